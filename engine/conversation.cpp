#include "engine/conversation.h"

namespace kiln {

Conversation::Conversation(ChatFormat format, const Tokenizer& tokenizer)
    : format_(std::move(format)), template_(ChatTemplate::parse(format_.source)), tokenizer_(tokenizer) {
    if (auto bos = tokenizer_.bos()) template_ctx_.bos_token = tokenizer_.token_text(*bos);
    if (auto eos = tokenizer_.eos()) template_ctx_.eos_token = tokenizer_.token_text(*eos);
}

void Conversation::set_system(std::string text) { system_ = std::move(text); }

void Conversation::add(std::string role, std::string content) {
    if (role != "user" && role != "assistant")
        throw ConversationError("a turn's role must be user or assistant, not '" + role + "'");
    turns_.push_back({std::move(role), std::move(content)});
}

void Conversation::clear() { turns_.clear(); }

void Conversation::pop_last() {
    if (!turns_.empty()) turns_.pop_back();
}

std::vector<ChatMessage> Conversation::messages() const {
    std::vector<ChatMessage> all;
    all.reserve(turns_.size() + 1);
    if (!system_.empty()) all.push_back({"system", system_});
    all.insert(all.end(), turns_.begin(), turns_.end());
    return all;
}

std::string Conversation::render(bool add_generation_prompt) const {
    return template_.render(messages(), add_generation_prompt, template_ctx_);
}

std::vector<int32_t> Conversation::tokenize(const std::string& rendered) const {
    std::vector<int32_t> tokens;
    const std::string& bos_text = template_ctx_.bos_token;
    const bool template_wrote_bos = !bos_text.empty() && rendered.starts_with(bos_text);
    // Two BOS tokens derail most models: add one only when the template did not.
    if (!template_wrote_bos && tokenizer_.add_bos() && tokenizer_.bos()) tokens.push_back(*tokenizer_.bos());
    std::vector<int32_t> body = tokenizer_.encode(rendered, /*add_special=*/false, /*parse_special=*/true);
    tokens.insert(tokens.end(), body.begin(), body.end());
    return tokens;
}

size_t Conversation::first_turn_end() const {
    // The oldest turn runs from the first message to the next user message.
    size_t end = 1;
    while (end < turns_.size() && turns_[end].role != "user") ++end;
    return end;
}

Conversation::Prompt Conversation::prompt(int64_t limit, int64_t target) {
    target = std::min(target, limit);
    Prompt p;
    p.tokens = tokenize(render(true));
    if (int64_t(p.tokens.size()) <= limit) return p;

    std::vector<ChatMessage> kept = turns_;
    size_t dropped = 0;
    try {
        for (;;) {
            const size_t end = first_turn_end();
            if (end >= turns_.size()) break;  // only the last turn is left
            turns_.erase(turns_.begin(), turns_.begin() + std::ptrdiff_t(end));
            ++dropped;
            p.tokens = tokenize(render(true));
            if (int64_t(p.tokens.size()) <= target) break;
        }
    } catch (...) {
        turns_ = std::move(kept);
        throw;
    }
    if (int64_t(p.tokens.size()) > limit) {
        const size_t n = p.tokens.size();
        turns_ = std::move(kept);
        throw ConversationError("the system prompt and your message are " + std::to_string(n) +
                                " tokens, more than the " + std::to_string(limit) +
                                " this context has room for; shorten them or raise the context size (-c)");
    }
    p.dropped_turns = dropped;
    return p;
}

nlohmann::ordered_json Conversation::to_json() const { return kiln::to_json(messages()); }

void Conversation::load_json(const nlohmann::json& j) {
    const nlohmann::json* list = &j;
    if (j.is_object() && j.contains("messages")) list = &j["messages"];
    if (!list->is_array())
        throw ConversationError("expected a JSON array of messages (or an object with a \"messages\" array)");
    std::string system;
    std::vector<ChatMessage> turns;
    for (size_t i = 0; i < list->size(); ++i) {
        const auto& m = (*list)[i];
        const std::string where = "message " + std::to_string(i + 1) + ": ";
        if (!m.is_object()) throw ConversationError(where + "expected an object with \"role\" and \"content\"");
        if (!m.contains("role") || !m["role"].is_string())
            throw ConversationError(where + "\"role\" is missing or not a string");
        const std::string role = m["role"].get<std::string>();
        std::string content;
        if (m.contains("content") && !m["content"].is_null()) {
            if (!m["content"].is_string()) throw ConversationError(where + "\"content\" must be a string");
            content = m["content"].get<std::string>();
        }
        if (role == "system") {
            if (i != 0) throw ConversationError(where + "a system message may only come first");
            system = std::move(content);
        } else if (role == "user" || role == "assistant") {
            turns.push_back({role, std::move(content)});
        } else {
            throw ConversationError(where + "role '" + role + "' is not one of system, user, assistant");
        }
    }
    system_ = std::move(system);
    turns_ = std::move(turns);
}

}  // namespace kiln
