#include "cli/svg_chart.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace pensieve::cli {
namespace {

constexpr double kPanelWidth = 420, kPanelHeight = 300;
constexpr double kLeft = 60, kRight = 20, kTop = 40, kBottom = 50;

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

// A round upper bound for the y axis, so tick labels read 0, 25, 50, ... rather than 0, 23.7, ...
double nice_ceiling(double v) {
  if (!(v > 0)) return 1;
  const double magnitude = std::pow(10.0, std::floor(std::log10(v)));
  for (double step : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (step * magnitude >= v) return step * magnitude;
  return 10 * magnitude;
}

std::string panel(const ChartPanel& p, const std::vector<std::string>& x_labels, double x0) {
  std::string out = fmt::format("<g transform=\"translate({},0)\">\n", x0);
  const double plot_w = kPanelWidth - kLeft - kRight, plot_h = kPanelHeight - kTop - kBottom;
  double max_v = 0;
  for (const auto& s : p.series)
    for (double v : s.values) max_v = std::max(max_v, std::isfinite(v) ? v : 0.0);
  const double top = nice_ceiling(max_v);
  const size_t n = x_labels.size();
  const auto x_at = [&](size_t i) { return kLeft + (n <= 1 ? plot_w / 2 : plot_w * static_cast<double>(i) / static_cast<double>(n - 1)); };
  const auto y_at = [&](double v) { return kTop + plot_h * (1 - v / top); };

  out += fmt::format("<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n", kPanelWidth / 2,
                     escape(p.title));
  for (int t = 0; t <= 4; ++t) {
    const double v = top * t / 4, y = y_at(v);
    out += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n", kLeft, y,
                       kLeft + plot_w, y);
    out += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\" font-size=\"11\">{:g}</text>\n", kLeft - 6,
                       y + 4, v);
  }
  out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#000\"/>\n", kLeft, kTop, kTop + plot_h);
  out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#000\"/>\n", kLeft, kTop + plot_h,
                     kLeft + plot_w);
  for (size_t i = 0; i < n; ++i)
    out += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\">{}</text>\n", x_at(i),
                       kTop + plot_h + 16, escape(x_labels[i]));
  out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\">concurrent streams</text>\n",
                     kLeft + plot_w / 2, kPanelHeight - 8);
  out += fmt::format(
      "<text x=\"14\" y=\"{0}\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 14 {0})\">{1}</text>\n",
      kTop + plot_h / 2, escape(p.y_unit));

  for (size_t s = 0; s < p.series.size(); ++s) {
    const auto& series = p.series[s];
    std::string points;
    for (size_t i = 0; i < std::min(n, series.values.size()); ++i)
      points += fmt::format("{}{:.1f},{:.1f}", points.empty() ? "" : " ", x_at(i), y_at(series.values[i]));
    out += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n",
                       escape(series.color), points);
    for (size_t i = 0; i < std::min(n, series.values.size()); ++i)
      out += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", x_at(i),
                         y_at(series.values[i]), escape(series.color));
    const double ly = kTop + 12 + 14 * static_cast<double>(s);
    out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"3\" fill=\"{}\"/>\n", kLeft + 8, ly - 4,
                       escape(series.color));
    out += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"11\">{}</text>\n", kLeft + 22, ly, escape(series.label));
  }
  out += "</g>\n";
  return out;
}

}  // namespace

std::string render_svg_chart(const std::string& title, const std::vector<std::string>& x_labels,
                             const std::vector<ChartPanel>& panels) {
  const double width = kPanelWidth * static_cast<double>(std::max<size_t>(panels.size(), 1));
  const double height = kPanelHeight + 30;
  std::string out = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n"
      "<text x=\"{2}\" y=\"20\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">{3}</text>\n"
      "<g transform=\"translate(0,30)\">\n",
      width, height, width / 2, escape(title));
  for (size_t i = 0; i < panels.size(); ++i) out += panel(panels[i], x_labels, kPanelWidth * static_cast<double>(i));
  out += "</g>\n</svg>\n";
  return out;
}

}  // namespace pensieve::cli
