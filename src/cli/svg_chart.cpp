#include "cli/svg_chart.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace pensieve::cli {
namespace {

constexpr double kPanelWidth = 440, kPanelHeight = 300;
constexpr double kLeft = 64, kRight = 24, kTop = 52, kBottom = 46;  // the plot area inside a panel
constexpr double kHeader = 56;                                     // title and subtitle

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

double finite_or_zero(double v) { return std::isfinite(v) ? v : 0.0; }

std::string panel(const ChartPanel& p, const Chart& chart, double x0, double y0) {
  std::string out = fmt::format("<g transform=\"translate({},{})\">\n", x0, y0);
  const double plot_w = kPanelWidth - kLeft - kRight, plot_h = kPanelHeight - kTop - kBottom;
  double max_v = 0;
  for (const auto& s : p.series)
    for (double v : s.values) max_v = std::max(max_v, finite_or_zero(v));
  const double top = nice_ceiling(max_v);
  const size_t n = chart.x_labels.size();
  const auto x_at = [&](size_t i) {
    return kLeft + (n <= 1 ? plot_w / 2 : plot_w * static_cast<double>(i) / static_cast<double>(n - 1));
  };
  const auto y_at = [&](double v) { return kTop + plot_h * (1 - finite_or_zero(v) / top); };

  out += fmt::format("<text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
                     kLeft + plot_w / 2, escape(p.title));
  // The legend sits between the title and the plot, so it never hides a line.
  double lx = kLeft;
  for (const auto& s : p.series) {
    out += fmt::format("<rect x=\"{}\" y=\"30\" width=\"14\" height=\"3\" fill=\"{}\"/>\n", lx, escape(s.color));
    out += fmt::format("<text x=\"{}\" y=\"35\" font-size=\"11\">{}</text>\n", lx + 18, escape(s.label));
    lx += 18 + 7.0 * static_cast<double>(s.label.size()) + 16;
  }
  for (int t = 0; t <= 4; ++t) {
    const double v = top * t / 4, y = y_at(v);
    out += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n", kLeft, y,
                       kLeft + plot_w, y);
    out += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\" font-size=\"11\">{:g}</text>\n", kLeft - 6,
                       y + 4, v);
  }
  out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#000\"/>\n", kLeft, kTop,
                     kTop + plot_h);
  out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#000\"/>\n", kLeft, kTop + plot_h,
                     kLeft + plot_w);
  for (size_t i = 0; i < n; ++i)
    out += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\">{}</text>\n", x_at(i),
                       kTop + plot_h + 16, escape(chart.x_labels[i]));
  out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\">{}</text>\n", kLeft + plot_w / 2,
                     kPanelHeight - 8, escape(chart.x_title));
  out += fmt::format(
      "<text x=\"16\" y=\"{0}\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 16 {0})\">{1}</text>\n",
      kTop + plot_h / 2, escape(p.y_unit));

  for (const auto& series : p.series) {
    const size_t count = std::min(n, series.values.size());
    std::string points;
    for (size_t i = 0; i < count; ++i)
      points += fmt::format("{}{:.1f},{:.1f}", points.empty() ? "" : " ", x_at(i), y_at(series.values[i]));
    out += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n",
                       escape(series.color), points);
    for (size_t i = 0; i < count; ++i)
      out += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"><title>{}: {:.4g}</title></circle>\n",
                         x_at(i), y_at(series.values[i]), escape(series.color), escape(series.label),
                         finite_or_zero(series.values[i]));
  }
  out += "</g>\n";
  return out;
}

}  // namespace

std::string render_svg_chart(const Chart& chart) {
  const size_t columns = static_cast<size_t>(std::max(chart.columns, 1));
  const size_t count = std::max<size_t>(chart.panels.size(), 1);
  const size_t used_columns = std::min(columns, count);
  const size_t rows = (count + columns - 1) / columns;
  const double width = kPanelWidth * static_cast<double>(used_columns);
  const double height = kHeader + kPanelHeight * static_cast<double>(rows) + 10;
  std::string out = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n"
      "<text x=\"{2}\" y=\"24\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">{3}</text>\n"
      "<text x=\"{2}\" y=\"44\" text-anchor=\"middle\" font-size=\"12\" fill=\"#444\">{4}</text>\n",
      width, height, width / 2, escape(chart.title), escape(chart.subtitle));
  for (size_t i = 0; i < chart.panels.size(); ++i) {
    const double x0 = kPanelWidth * static_cast<double>(i % columns);
    const double y0 = kHeader + kPanelHeight * static_cast<double>(i / columns);
    out += panel(chart.panels[i], chart, x0, y0);
  }
  out += "</svg>\n";
  return out;
}

}  // namespace pensieve::cli
