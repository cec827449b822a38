#include "server/openai_request.h"

#include <cmath>
#include <limits>

#include "engine/utf8.h"
#include "server/api_error.h"

namespace kiln::server {

namespace {
using nlohmann::json;

const char* type_name(const json& v) {
    if (v.is_null()) return "null";
    if (v.is_boolean()) return "a boolean";
    if (v.is_number()) return "a number";
    if (v.is_string()) return "a string";
    if (v.is_array()) return "an array";
    return "an object";
}

// A field that is absent or null counts as not given.
const json* field(const json& body, const char* name) {
    auto it = body.find(name);
    if (it == body.end() || it->is_null()) return nullptr;
    return &*it;
}

double number(const json& v, const std::string& name, double lo, double hi) {
    if (!v.is_number()) throw invalid_param(name, name + " must be a number, not " + type_name(v), "invalid_type");
    const double d = v.get<double>();
    if (!std::isfinite(d) || d < lo || d > hi) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "%s must be between %g and %g (got %s)", name.c_str(), lo, hi, v.dump().c_str());
        throw invalid_param(name, buf);
    }
    return d;
}

int64_t integer(const json& v, const std::string& name, int64_t lo, int64_t hi) {
    // 1e3 parses as a float; accept it only when it is a whole number.
    if (!v.is_number()) throw invalid_param(name, name + " must be an integer, not " + type_name(v), "invalid_type");
    if (v.is_number_float()) {
        const double d = v.get<double>();
        if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e15)
            throw invalid_param(name, name + " must be an integer (got " + v.dump() + ")", "invalid_type");
        if (d < double(lo) || d > double(hi))
            throw invalid_param(name, name + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                                          " (got " + v.dump() + ")");
        return int64_t(d);
    }
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
        throw invalid_param(name, name + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                                      " (got " + v.dump() + ")");
    const int64_t i = v.get<int64_t>();
    if (i < lo || i > hi)
        throw invalid_param(name, name + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                                      " (got " + v.dump() + ")");
    return i;
}

bool boolean(const json& v, const std::string& name) {
    if (!v.is_boolean()) throw invalid_param(name, name + " must be a boolean, not " + type_name(v), "invalid_type");
    return v.get<bool>();
}

const std::string& string(const json& v, const std::string& name) {
    if (!v.is_string()) throw invalid_param(name, name + " must be a string, not " + type_name(v), "invalid_type");
    return v.get_ref<const std::string&>();
}
}  // namespace

json parse_body(const std::string& body) {
    if (!is_valid_utf8(body))
        throw invalid_request("the request body is not valid UTF-8; send JSON encoded as UTF-8", "invalid_utf8");
    json j;
    try {
        j = json::parse(body);
    } catch (const json::parse_error& e) {
        throw invalid_request(std::string("the request body is not valid JSON: ") + e.what(), "invalid_json");
    }
    if (!j.is_object()) throw invalid_request(std::string("the request body must be a JSON object, not ") + type_name(j), "invalid_json");
    return j;
}

GenerateParams parse_generate_params(const json& body, const SamplingParams& defaults, int32_t n_vocab, bool chat) {
    GenerateParams p;
    p.sampling = defaults;
    if (auto v = field(body, "model")) p.model = string(*v, "model");
    constexpr int64_t kMaxTokens = int64_t(1) << 24;
    if (auto v = field(body, "max_tokens")) p.max_tokens = int32_t(integer(*v, "max_tokens", 0, kMaxTokens));
    if (auto v = field(body, "max_completion_tokens"))
        p.max_tokens = int32_t(integer(*v, "max_completion_tokens", 0, kMaxTokens));
    if (auto v = field(body, "temperature")) p.sampling.temperature = float(number(*v, "temperature", 0, 2));
    if (auto v = field(body, "top_p")) p.sampling.top_p = float(number(*v, "top_p", 0, 1));
    if (auto v = field(body, "top_k")) p.sampling.top_k = int32_t(integer(*v, "top_k", 0, n_vocab));
    if (auto v = field(body, "min_p")) p.sampling.min_p = float(number(*v, "min_p", 0, 1));
    if (auto v = field(body, "presence_penalty")) p.sampling.presence_penalty = float(number(*v, "presence_penalty", -2, 2));
    if (auto v = field(body, "frequency_penalty")) p.sampling.frequency_penalty = float(number(*v, "frequency_penalty", -2, 2));
    if (auto v = field(body, "repeat_penalty")) {
        p.sampling.repeat_penalty = float(number(*v, "repeat_penalty", 0, 10));
        if (p.sampling.repeat_penalty <= 0) throw invalid_param("repeat_penalty", "repeat_penalty must be greater than 0 (1 = off)");
    }
    if (auto v = field(body, "seed")) {
        // OpenAI clients send any 64-bit integer; negative ones wrap like llama-server's.
        if (!v->is_number_integer()) throw invalid_param("seed", "seed must be an integer", "invalid_type");
        p.sampling.seed = v->is_number_unsigned() ? v->get<uint64_t>() : uint64_t(v->get<int64_t>());
        p.seed_given = true;
    }
    if (auto v = field(body, "stop")) {
        if (v->is_string()) {
            p.stop.push_back(v->get<std::string>());
        } else if (v->is_array()) {
            if (v->size() > 16) throw invalid_param("stop", "stop may hold at most 16 strings");
            for (const auto& s : *v) p.stop.push_back(string(s, "stop"));
        } else {
            throw invalid_param("stop", std::string("stop must be a string or an array of strings, not ") + type_name(*v), "invalid_type");
        }
        for (const auto& s : p.stop)
            if (s.empty()) throw invalid_param("stop", "stop strings must not be empty");
    }
    if (auto v = field(body, "n")) p.n = int(integer(*v, "n", 1, 16));
    if (auto v = field(body, "stream")) p.stream = boolean(*v, "stream");
    if (auto v = field(body, "stream_options")) {
        if (!v->is_object()) throw invalid_param("stream_options", "stream_options must be an object", "invalid_type");
        if (!p.stream) throw invalid_param("stream_options", "stream_options is only allowed when stream is true");
        if (auto u = field(*v, "include_usage")) p.include_usage = boolean(*u, "stream_options.include_usage");
    }
    if (auto v = field(body, "logit_bias")) {
        if (!v->is_object()) throw invalid_param("logit_bias", "logit_bias must be an object of token id -> bias", "invalid_type");
        for (const auto& [key, bias] : v->items()) {
            int64_t id = -1;
            try {
                size_t used = 0;
                id = std::stoll(key, &used);
                if (used != key.size()) id = -1;
            } catch (const std::exception&) {
                id = -1;
            }
            if (id < 0 || id >= n_vocab)
                throw invalid_param("logit_bias", "logit_bias key '" + key + "' is not a token id in [0, " + std::to_string(n_vocab) + ")");
            p.sampling.logit_bias.push_back({int32_t(id), float(number(bias, "logit_bias", -100, 100))});
        }
    }
    if (chat) {
        if (auto v = field(body, "logprobs")) p.logprobs = boolean(*v, "logprobs");
        if (auto v = field(body, "top_logprobs")) {
            p.top_logprobs = int(integer(*v, "top_logprobs", 0, 20));
            if (!p.logprobs && p.top_logprobs > 0)
                throw invalid_param("top_logprobs", "top_logprobs requires logprobs to be true");
        }
    } else if (auto v = field(body, "logprobs")) {
        // Legacy completions: logprobs is the number of alternatives (0..5).
        p.logprobs = true;
        p.top_logprobs = int(integer(*v, "logprobs", 0, 5));
    }
    p.sampling.logprobs = p.logprobs;
    p.sampling.top_logprobs = p.top_logprobs;
    if (auto v = field(body, "response_format")) {
        if (!v->is_object()) throw invalid_param("response_format", "response_format must be an object", "invalid_type");
        const json* t = field(*v, "type");
        if (!t) throw invalid_param("response_format", "response_format.type is required");
        const std::string& type = string(*t, "response_format.type");
        if (type == "text") {
        } else if (type == "json_object") {
            p.response_format.kind = ResponseFormat::Kind::JsonObject;
        } else if (type == "json_schema") {
            p.response_format.kind = ResponseFormat::Kind::JsonSchema;
            const json* js = field(*v, "json_schema");
            if (!js || !js->is_object()) throw invalid_param("response_format", "response_format.json_schema must be an object");
            const json* schema = field(*js, "schema");
            if (!schema || !schema->is_object())
                throw invalid_param("response_format", "response_format.json_schema.schema must be an object (a JSON schema)");
            p.response_format.schema = *schema;
        } else {
            throw invalid_param("response_format", "response_format.type must be text, json_object or json_schema (got '" + type + "')");
        }
    }
    return p;
}

std::vector<ParsedMessage> parse_messages(const json& body) {
    const json* m = field(body, "messages");
    if (!m) throw invalid_param("messages", "messages is required", "missing_required_parameter");
    if (!m->is_array()) throw invalid_param("messages", std::string("messages must be an array, not ") + type_name(*m), "invalid_type");
    if (m->empty()) throw invalid_param("messages", "messages must not be empty");
    std::vector<ParsedMessage> out;
    for (size_t i = 0; i < m->size(); ++i) {
        const json& msg = (*m)[i];
        const std::string where = "messages[" + std::to_string(i) + "]";
        if (!msg.is_object()) throw invalid_param(where, where + " must be an object", "invalid_type");
        const json* role = field(msg, "role");
        if (!role) throw invalid_param(where + ".role", where + ".role is required", "missing_required_parameter");
        const std::string& r = string(*role, where + ".role");
        if (r != "system" && r != "user" && r != "assistant" && r != "developer" && r != "tool")
            throw invalid_param(where + ".role", where + ".role must be system, user, assistant, developer or tool (got '" + r + "')");
        ParsedMessage pm;
        pm.role = r == "developer" ? "system" : r;
        const json* content = field(msg, "content");
        if (!content) {
            if (r != "assistant") throw invalid_param(where + ".content", where + ".content is required", "missing_required_parameter");
        } else if (content->is_string()) {
            pm.content = content->get<std::string>();
        } else if (content->is_array()) {
            for (size_t k = 0; k < content->size(); ++k) {
                const json& part = (*content)[k];
                const std::string pw = where + ".content[" + std::to_string(k) + "]";
                if (!part.is_object()) throw invalid_param(pw, pw + " must be an object", "invalid_type");
                const json* type = field(part, "type");
                if (!type || !type->is_string() || type->get<std::string>() != "text")
                    throw invalid_param(pw + ".type", pw + ": only content parts of type \"text\" are supported by this model");
                const json* text = field(part, "text");
                if (!text) throw invalid_param(pw + ".text", pw + ".text is required", "missing_required_parameter");
                pm.content += string(*text, pw + ".text");
            }
        } else {
            throw invalid_param(where + ".content", where + ".content must be a string or an array of content parts", "invalid_type");
        }
        pm.raw = nlohmann::ordered_json::object();
        pm.raw["role"] = pm.role;
        pm.raw["content"] = pm.content;
        for (const char* extra : {"name", "tool_calls", "tool_call_id"})
            if (auto v = field(msg, extra)) pm.raw[extra] = *v;
        out.push_back(std::move(pm));
    }
    return out;
}

std::vector<PromptInput> parse_prompts(const json& value, const std::string& param, int32_t n_vocab) {
    auto token_array = [&](const json& a, const std::string& where) {
        PromptInput in;
        for (const auto& t : a) in.tokens.push_back(int32_t(integer(t, where, 0, n_vocab - 1)));
        if (in.tokens.empty()) throw invalid_param(param, where + " must not be empty");
        return in;
    };
    std::vector<PromptInput> out;
    if (value.is_string()) {
        out.push_back({value.get<std::string>(), {}});
    } else if (value.is_array() && !value.empty() && value[0].is_number()) {
        out.push_back(token_array(value, param));
    } else if (value.is_array() && !value.empty()) {
        if (value.size() > 16) throw invalid_param(param, param + " may hold at most 16 prompts");
        for (size_t i = 0; i < value.size(); ++i) {
            const std::string where = param + "[" + std::to_string(i) + "]";
            if (value[i].is_string()) out.push_back({value[i].get<std::string>(), {}});
            else if (value[i].is_array()) out.push_back(token_array(value[i], where));
            else throw invalid_param(param, where + " must be a string or an array of token ids", "invalid_type");
        }
    } else {
        throw invalid_param(param, param + " must be a string, an array of strings or an array of token ids" +
                                       (value.is_array() ? std::string(" (it is empty)") : std::string()),
                            value.is_array() ? "invalid_value" : "invalid_type");
    }
    return out;
}

}  // namespace kiln::server
