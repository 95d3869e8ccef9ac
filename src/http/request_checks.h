#pragma once
// Checks on a request's head that need no body: the API key (compared in constant time), the framing
// (Transfer-Encoding) and the bounded route label the metrics use.
#include <span>
#include <string>
#include <string_view>

#include <boost/beast/http/fields.hpp>

namespace pensieve::http {

// Equal strings, in time that depends only on the lengths, never on where they first differ.
bool constant_time_equals(std::string_view a, std::string_view b);

// True when no key is configured, or "Authorization: Bearer K" or "x-api-key: K" carries one of `keys`.
// Every key is compared, so the time does not tell which one came close.
bool authorized(const boost::beast::http::fields& headers, std::span<const std::string> keys);

// Empty when the body framing is one we read; otherwise why not. Only "chunked" is accepted as a
// Transfer-Encoding: anything else (gzip, ...) would leave the body's end unknown.
std::string unsupported_framing(const boost::beast::http::fields& headers);

// The path as a metrics label: one of the routes the server has, or "other", so that clients cannot add series.
std::string route_label(std::string_view path);

}  // namespace pensieve::http
