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

}  // namespace segwan::controller
