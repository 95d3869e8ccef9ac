#pragma once
// A small hand-written SVG: a title, then a grid of panels, each plotting its series against the same x positions
// (the concurrency levels) on its own y axis. No charting library: a few lines and labels are all a benchmark
// report needs.
#include <string>
#include <vector>

namespace pensieve::cli {

struct ChartSeries {
  std::string label;
  std::string color;           // any SVG colour, e.g. "#1f77b4"
  std::vector<double> values;  // one per x position
};

struct ChartPanel {
  std::string title;
  std::string y_unit;
  std::vector<ChartSeries> series;
};

struct Chart {
  std::string title;                  // bold, on top
  std::string subtitle;               // a smaller line under it (may be empty)
  std::string x_title = "concurrent streams";
  std::vector<std::string> x_labels;  // names the x positions, evenly spaced
  std::vector<ChartPanel> panels;
  int columns = 2;                    // panels per row
};

std::string render_svg_chart(const Chart& chart);

}  // namespace pensieve::cli
