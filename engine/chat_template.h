#pragma once
// Chat templates: the Jinja program shipped in a model's tokenizer_config.json
// (GGUF key tokenizer.chat_template) that turns a conversation into the prompt
// text the model was trained on. Rendered the way Hugging Face transformers'
// apply_chat_template does: jinja2 with trim_blocks and lstrip_blocks, the
// loopcontrols extension, globals raise_exception and strftime_now, and
// transformers' tojson.
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/jinja.h"

namespace kiln {

class ChatTemplateError : public std::runtime_error {
public:
    enum class Kind { Syntax, Render, Raised, Limit };
    ChatTemplateError(Kind kind, const std::string& what, int line) : std::runtime_error(what), kind_(kind), line_(line) {}
    Kind kind() const { return kind_; }
    int line() const { return line_; }  // 0 when unknown

private:
    Kind kind_;
    int line_;
};

struct ChatMessage {
    std::string role;
    std::string content;
    // Further fields merged into the message object (tool_calls, tool_call_id, name, ...).
    nlohmann::ordered_json extra = nlohmann::ordered_json::object();
};

struct ChatTemplateContext {
    std::string bos_token;
    std::string eos_token;
    // Tool definitions (OpenAI "tools" array); absent leaves `tools` undefined.
    std::optional<nlohmann::ordered_json> tools;
    // More template variables (e.g. "date_string", "builtin_tools", "enable_thinking"): an object.
    nlohmann::ordered_json extra_vars = nlohmann::ordered_json::object();
    // The clock strftime_now() reads (local time fields); absent: the current local time.
    std::optional<std::tm> now;
    jinja::Limits limits;
};

class ChatTemplate {
public:
    // Throws ChatTemplateError ("chat template: line 12: unknown filter 'foo'").
    static ChatTemplate parse(std::string source);

    // `messages` is a JSON array of message objects. Prefer ordered_json:
    // key order is visible to templates that print dicts or call tojson.
    // Throws ChatTemplateError; a template's raise_exception(msg) gives
    // "chat template raised: msg".
    std::string render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                       const ChatTemplateContext& ctx = {}) const;
    std::string render(const nlohmann::json& messages, bool add_generation_prompt,
                       const ChatTemplateContext& ctx = {}) const;
    std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                       const ChatTemplateContext& ctx = {}) const;

    const std::string& source() const { return source_; }

private:
    std::string source_;
    jinja::Template template_;
    std::string render_value(jinja::Value messages, bool add_generation_prompt, const ChatTemplateContext& ctx) const;
};

nlohmann::ordered_json to_json(const std::vector<ChatMessage>& messages);

}  // namespace kiln
