#pragma once
// A small hand-written SVG: for each metric a panel plotting its series against the concurrency levels.
// No charting library: a few lines and labels are all a benchmark report needs.
#include <string>
#include <vector>

namespace pensieve::cli {

struct ChartSeries {
  std::string label;
  std::string color;        // any SVG colour, e.g. "#1f77b4"
  std::vector<double> values;  // one per x position
};

struct ChartPanel {
  std::string title;
  std::string y_unit;
  std::vector<ChartSeries> series;
};

// `x_labels` names the x positions (the concurrency levels), evenly spaced.
std::string render_svg_chart(const std::string& title, const std::vector<std::string>& x_labels,
                             const std::vector<ChartPanel>& panels);

}  // namespace pensieve::cli
