#pragma once
// Errors the server answers with an OpenAI-shaped body:
//   {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}
// Thrown anywhere in a handler; the route wrapper turns them into the response.
#include <optional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace kiln::server {

class ApiError : public std::runtime_error {
public:
    ApiError(int status, std::string type, std::string message, std::optional<std::string> param = std::nullopt,
             std::optional<std::string> code = std::nullopt)
        : std::runtime_error(message), status_(status), type_(std::move(type)), param_(std::move(param)), code_(std::move(code)) {}

    int status() const { return status_; }
    const std::string& type() const { return type_; }
    const std::optional<std::string>& param() const { return param_; }
    const std::optional<std::string>& code() const { return code_; }
    nlohmann::json body() const;

private:
    int status_;
    std::string type_;
    std::optional<std::string> param_, code_;
};

// 400 invalid_request_error about one request field.
ApiError invalid_param(const std::string& param, const std::string& message, const std::string& code = "invalid_value");
ApiError invalid_request(const std::string& message, const std::string& code = "invalid_request");

nlohmann::json error_body(int status, const std::string& type, const std::string& message,
                          const std::optional<std::string>& param = std::nullopt,
                          const std::optional<std::string>& code = std::nullopt);

// JSON text that is always valid UTF-8 (token pieces may be partial characters).
std::string dump_json(const nlohmann::json& j);

}  // namespace kiln::server
