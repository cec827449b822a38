#include "engine/chat_template.h"

#include <chrono>

namespace kiln {
namespace {

ChatTemplateError translate(const jinja::Error& e) {
    std::string where = e.line() > 0 ? "line " + std::to_string(e.line()) + ": " : "";
    switch (e.kind()) {
        case jinja::Error::Kind::Raised:
            return ChatTemplateError(ChatTemplateError::Kind::Raised, std::string("chat template raised: ") + e.what(), e.line());
        case jinja::Error::Kind::Syntax:
            return ChatTemplateError(ChatTemplateError::Kind::Syntax, "chat template: " + where + e.what(), e.line());
        case jinja::Error::Kind::Limit:
            return ChatTemplateError(ChatTemplateError::Kind::Limit, "chat template: " + where + e.what(), e.line());
        case jinja::Error::Kind::Runtime: break;
    }
    return ChatTemplateError(ChatTemplateError::Kind::Render, "chat template: " + where + e.what(), e.line());
}

std::tm local_now() {
    std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    localtime_r(&t, &tm);
    return tm;
}

}  // namespace

ChatTemplate ChatTemplate::parse(std::string source) {
    ChatTemplate t;
    try {
        t.template_ = jinja::Template::parse(source);
    } catch (const jinja::Error& e) {
        throw translate(e);
    }
    t.source_ = std::move(source);
    return t;
}

nlohmann::ordered_json to_json(const std::vector<ChatMessage>& messages) {
    auto out = nlohmann::ordered_json::array();
    for (const auto& m : messages) {
        nlohmann::ordered_json j = {{"role", m.role}, {"content", m.content}};
        if (m.extra.is_object())
            for (auto it = m.extra.begin(); it != m.extra.end(); ++it) j[it.key()] = it.value();
        out.push_back(std::move(j));
    }
    return out;
}

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                 const ChatTemplateContext& ctx) const {
    return render_value(jinja::from_json(messages), add_generation_prompt, ctx);
}

std::string ChatTemplate::render(const nlohmann::json& messages, bool add_generation_prompt,
                                 const ChatTemplateContext& ctx) const {
    return render_value(jinja::from_json(messages), add_generation_prompt, ctx);
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                 const ChatTemplateContext& ctx) const {
    return render_value(jinja::from_json(to_json(messages)), add_generation_prompt, ctx);
}

std::string ChatTemplate::render_value(jinja::Value messages, bool add_generation_prompt,
                                       const ChatTemplateContext& ctx) const {
    using jinja::Value;
    if (!messages.is_list())
        throw ChatTemplateError(ChatTemplateError::Kind::Render, "chat template: messages must be a JSON array", 0);
    jinja::Dict vars;
    if (ctx.extra_vars.is_object())
        for (auto it = ctx.extra_vars.begin(); it != ctx.extra_vars.end(); ++it) vars.set(it.key(), jinja::from_json(it.value()));
    vars.set("messages", std::move(messages));
    vars.set("add_generation_prompt", Value(add_generation_prompt));
    vars.set("bos_token", Value(ctx.bos_token));
    vars.set("eos_token", Value(ctx.eos_token));
    if (ctx.tools) vars.set("tools", jinja::from_json(*ctx.tools));
    vars.set("raise_exception", Value::function("raise_exception", [](const jinja::CallArgs& a, jinja::Interpreter&) -> Value {
        const Value* msg = a.get(0, "message");
        throw jinja::Error(jinja::Error::Kind::Raised, msg ? jinja::to_str(*msg) : std::string());
    }));
    std::tm now = ctx.now ? *ctx.now : local_now();
    vars.set("strftime_now", Value::function("strftime_now", [now](const jinja::CallArgs& a, jinja::Interpreter&) -> Value {
        const Value* fmt = a.get(0, "format");
        if (!fmt || !fmt->is_string()) throw jinja::runtime_error("strftime_now() needs a format string");
        if (fmt->as_string().size() > 256) throw jinja::runtime_error("strftime_now() format string is too long");
        char buf[1024];
        size_t n = std::strftime(buf, sizeof buf, fmt->as_string().c_str(), &now);
        return Value(std::string(buf, n));
    }));
    try {
        return template_.render(vars, ctx.limits);
    } catch (const jinja::Error& e) {
        throw translate(e);
    }
}

}  // namespace kiln
