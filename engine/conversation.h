#pragma once
// A chat conversation as the model sees it: an optional system prompt and the
// turns after it, rendered through the chat template and tokenized, trimmed
// from the oldest turn when it outgrows the context, saved and loaded as JSON
// in the OpenAI messages shape.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/chat_template.h"
#include "engine/conversation_formats.h"
#include "engine/tokenizer.h"

namespace kiln {

// Bad conversation JSON, or a conversation that cannot fit the context.
class ConversationError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Conversation {
public:
    // Throws ChatTemplateError when the format's template does not parse.
    Conversation(ChatFormat format, const Tokenizer& tokenizer);

    const ChatFormat& format() const { return format_; }

    void set_system(std::string text);  // "" removes the system prompt
    const std::string& system() const { return system_; }
    // role: "user" or "assistant".
    void add(std::string role, std::string content);
    void clear();  // drops every turn; keeps the system prompt
    void pop_last();  // drops the newest message (a user message that could not be answered)
    // The turns (user and assistant messages), oldest first, without the system prompt.
    const std::vector<ChatMessage>& turns() const { return turns_; }
    std::vector<ChatMessage> messages() const;  // the system prompt first when set

    // Throws ChatTemplateError (e.g. a template's raise_exception).
    std::string render(bool add_generation_prompt) const;
    // Tokens of a rendered prompt: the template's markup (special tokens) parsed, and
    // BOS added only when the vocabulary asks for it and the template did not write it.
    std::vector<int32_t> tokenize(const std::string& rendered) const;

    struct Prompt {
        std::vector<int32_t> tokens;  // the conversation plus the generation prompt
        size_t dropped_turns = 0;     // user messages dropped (with the answers after them)
    };
    // The prompt for the next answer. When it is longer than `limit` tokens, drops the
    // oldest turns (a user message and the answers after it), never the system prompt
    // nor the last user message, until it is at most `target` tokens (target <= limit:
    // trimming further than needed keeps the next turns from trimming, and re-evaluating,
    // again). Throws ConversationError when the system prompt and the last turn alone
    // exceed `limit`; the conversation is then left as it was.
    Prompt prompt(int64_t limit, int64_t target);

    // [{"role": ..., "content": ...}, ...], the system prompt first.
    nlohmann::ordered_json to_json() const;
    // Accepts that array or an object with a "messages" array (an OpenAI request).
    // Replaces the whole conversation, the system prompt included. Throws
    // ConversationError naming the offending message; the conversation is then unchanged.
    void load_json(const nlohmann::json& j);

private:
    size_t first_turn_end() const;  // index after the oldest turn

    ChatFormat format_;
    ChatTemplate template_;
    const Tokenizer& tokenizer_;
    ChatTemplateContext template_ctx_;
    std::string system_;
    std::vector<ChatMessage> turns_;
};

}  // namespace kiln
