#pragma once
// The files of src/http/web/, compiled into the binary (the definition is generated at build time by
// cmake/embed_web_assets.cmake), so the web page needs no files and no network at run time.
#include <span>
#include <string_view>

namespace pensieve::http {

struct WebAsset {
  std::string_view name;   // file name, e.g. "app.js"
  std::string_view bytes;
  std::string_view etag;   // quoted, from the file's SHA-256
};

std::span<const WebAsset> web_assets();

}  // namespace pensieve::http
