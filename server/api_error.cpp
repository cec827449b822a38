#include "server/api_error.h"

namespace kiln::server {

nlohmann::json error_body(int status, const std::string& type, const std::string& message,
                          const std::optional<std::string>& param, const std::optional<std::string>& code) {
    (void)status;
    nlohmann::json e = {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
    if (param) e["param"] = *param;
    if (code) e["code"] = *code;
    return {{"error", e}};
}

nlohmann::json ApiError::body() const { return error_body(status_, type_, what(), param_, code_); }

ApiError invalid_param(const std::string& param, const std::string& message, const std::string& code) {
    return ApiError(400, "invalid_request_error", message, param, code);
}

ApiError invalid_request(const std::string& message, const std::string& code) {
    return ApiError(400, "invalid_request_error", message, std::nullopt, code);
}

std::string dump_json(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

}  // namespace kiln::server
