#pragma once

#include <string>

#include "segwan/result.h"

namespace segwan::controller {

// Error.code of controller errors is the HTTP status the REST API answers with.
inline constexpr int kBadRequest = 400;
inline constexpr int kUnauthenticated = 401;
inline constexpr int kForbidden = 403;
inline constexpr int kNotFound = 404;
inline constexpr int kConflict = 409;
inline constexpr int kTooMany = 429;       // a quota is used up (RESOURCE_EXHAUSTED)
inline constexpr int kUnprocessable = 422;  // an edge refused what the controller asked
inline constexpr int kUnavailable = 503;    // an edge could not be reached
inline Error ApiError(int http, std::string field, std::string message) {
  return Error{std::move(message), std::move(field), http};
}

// An edge's error that says the request itself was wrong, as opposed to the edge being away
// (UNAVAILABLE) or too slow (DEADLINE_EXCEEDED).
inline bool Refused(const Error& e) { return e.code != 14 && e.code != 4; }
// An edge's error as the API answers it: 422 refused, 503 away.
inline Error EdgeError(const std::string& field, const Error& e) {
  return ApiError(Refused(e) ? kUnprocessable : kUnavailable, field, e.message);
}

}  // namespace segwan::controller
