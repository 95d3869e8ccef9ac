#include "http/web_page.h"

#include <string>

#include "http/web_assets.h"

namespace pensieve::http {

namespace {

std::string content_type(std::string_view name) {
  auto ends_with = [&](std::string_view ext) { return name.size() >= ext.size() && name.substr(name.size() - ext.size()) == ext; };
  if (ends_with(".html")) return "text/html; charset=utf-8";
  if (ends_with(".js")) return "text/javascript; charset=utf-8";
  if (ends_with(".css")) return "text/css; charset=utf-8";
  if (ends_with(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

// Only the page's own files may run or style it, and it may talk to this server only: model text that slipped
// through as markup could neither load nor send anything.
constexpr const char* kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

}  // namespace

std::optional<api::Reply> web_page_reply(std::string_view path, std::string_view if_none_match) {
  constexpr std::string_view kAssets = "/assets/";
  std::string_view name;
  if (path == "/") {
    name = "index.html";
  } else if (path.substr(0, kAssets.size()) == kAssets) {
    name = path.substr(kAssets.size());
  } else {
    return std::nullopt;
  }
  for (const WebAsset& a : web_assets()) {
    if (a.name != name) continue;
    // no-cache: the browser revalidates each time (a cheap 304), so a new binary's page is never stale.
    std::vector<std::pair<std::string, std::string>> headers = {
        {"Cache-Control", "no-cache"},
        {"ETag", std::string(a.etag)},
        {"Content-Security-Policy", kContentSecurityPolicy},
        {"X-Content-Type-Options", "nosniff"},
        {"Referrer-Policy", "no-referrer"}};
    if (if_none_match == a.etag) return api::Reply{304, "", content_type(name), std::move(headers)};
    return api::Reply{200, std::string(a.bytes), content_type(name), std::move(headers)};
  }
  return std::nullopt;
}

}  // namespace pensieve::http
