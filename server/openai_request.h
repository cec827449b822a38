#pragma once
// Reading OpenAI request bodies strictly: every known field is checked for
// type and range, with a 400 that names the field (`param`). Unknown fields
// are ignored, as OpenAI does, so newer clients keep working.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/sampler.h"

namespace kiln::server {

struct ResponseFormat {
    enum class Kind { Text, JsonObject, JsonSchema } kind = Kind::Text;
    nlohmann::json schema;  // JsonSchema: the schema
};

// What /v1/chat/completions and /v1/completions share.
struct GenerateParams {
    std::optional<std::string> model;
    int32_t max_tokens = -1;           // -1: until end of generation or a full context
    SamplingParams sampling;
    bool seed_given = false;
    std::vector<std::string> stop;
    int n = 1;
    bool stream = false;
    bool include_usage = false;
    bool logprobs = false;
    int top_logprobs = 0;
    ResponseFormat response_format;
};

// `defaults` are the server's sampling settings (from the command line).
// Throws ApiError.
GenerateParams parse_generate_params(const nlohmann::json& body, const SamplingParams& defaults, int32_t n_vocab,
                                     bool chat);

// A chat message as the template sees it: content parts joined into text.
struct ParsedMessage {
    std::string role;
    std::string content;
    nlohmann::ordered_json raw;  // the message with content flattened, for the template
};
std::vector<ParsedMessage> parse_messages(const nlohmann::json& body);

// /v1/completions `prompt`: strings, or token arrays. Each entry is one prompt.
struct PromptInput {
    std::optional<std::string> text;
    std::vector<int32_t> tokens;  // when given as ids
};
std::vector<PromptInput> parse_prompts(const nlohmann::json& value, const std::string& param, int32_t n_vocab);

// Parses a body, mapping malformed JSON / invalid UTF-8 / non-objects to 400s.
nlohmann::json parse_body(const std::string& body);

}  // namespace kiln::server
