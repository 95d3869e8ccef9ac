#pragma once
// GET / and GET /assets/FILE: the web page (chat and dashboard) served from the embedded files. The page is
// static and needs no key; the API calls it makes carry one.
#include <optional>
#include <string_view>

#include "api/generation.h"

namespace pensieve::http {

// The reply for `path` when it names the page or one of its files (304 when `if_none_match` is its ETag);
// nullopt for any other path.
std::optional<api::Reply> web_page_reply(std::string_view path, std::string_view if_none_match);

}  // namespace pensieve::http
