// Well-known chat templates (the chat_template strings of the models'
// Hugging Face tokenizer_config.json files) must produce their documented
// prompt formats for a small conversation.
#include <doctest/doctest.h>

#include <string>

#include "engine/chat_template.h"

namespace {

// Llama-2-chat (meta-llama/Llama-2-7b-chat-hf).
const char* kLlama2 =
    R"({% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %})";

// Mistral-7B-Instruct-v0.1.
const char* kMistral =
    R"({{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %})";

// ChatML as in Qwen1.5/Qwen2-Instruct.
const char* kChatML =
    R"({% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %})";

// Gemma-7b-it.
const char* kGemma =
    R"({{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %})";

// Phi-3-mini-4k-instruct.
const char* kPhi3 =
    R"({% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %})";

// zephyr-7b-beta: written over several lines, so it leans on trim_blocks.
const char* kZephyr = R"({% for message in messages %}
{% if message['role'] == 'user' %}
{{ '<|user|>\n' + message['content'] + eos_token }}
{% elif message['role'] == 'system' %}
{{ '<|system|>\n' + message['content'] + eos_token }}
{% elif message['role'] == 'assistant' %}
{{ '<|assistant|>\n'  + message['content'] + eos_token }}
{% endif %}
{% if loop.last and add_generation_prompt %}
{{ '<|assistant|>' }}
{% endif %}
{% endfor %})";

nlohmann::ordered_json conversation(bool with_system) {
    auto m = nlohmann::ordered_json::array();
    if (with_system) m.push_back({{"role", "system"}, {"content", "Be brief."}});
    m.push_back({{"role", "user"}, {"content", "Hello"}});
    m.push_back({{"role", "assistant"}, {"content", "Hi there"}});
    m.push_back({{"role", "user"}, {"content", "How are you?"}});
    return m;
}

std::string render(const char* source, bool with_system, bool add_generation_prompt, const char* bos, const char* eos) {
    kiln::ChatTemplateContext ctx;
    ctx.bos_token = bos;
    ctx.eos_token = eos;
    return kiln::ChatTemplate::parse(source).render(conversation(with_system), add_generation_prompt, ctx);
}

}  // namespace

TEST_CASE("known templates: Llama-2 [INST] <<SYS>> format") {
    CHECK(render(kLlama2, true, true, "<s>", "</s>") ==
          "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHello [/INST] Hi there </s><s>[INST] How are you? [/INST]");
    CHECK(render(kLlama2, false, true, "<s>", "</s>") == "<s>[INST] Hello [/INST] Hi there </s><s>[INST] How are you? [/INST]");
}

TEST_CASE("known templates: Mistral v0.1 [INST] format, system role refused") {
    CHECK(render(kMistral, false, true, "<s>", "</s>") == "<s>[INST] Hello [/INST]Hi there</s>[INST] How are you? [/INST]");
    CHECK_THROWS_WITH_AS(render(kMistral, true, true, "<s>", "</s>"),
                         "chat template raised: Conversation roles must alternate user/assistant/user/assistant/...",
                         kiln::ChatTemplateError);
}

TEST_CASE("known templates: ChatML (Qwen) with and without a system message") {
    CHECK(render(kChatML, true, true, "", "") ==
          "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi "
          "there<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n");
    CHECK(render(kChatML, false, false, "", "") ==
          "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
          "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n");
}

TEST_CASE("known templates: Gemma turns, model role, system refused") {
    CHECK(render(kGemma, false, true, "<bos>", "<eos>") ==
          "<bos><start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n"
          "<start_of_turn>user\nHow are you?<end_of_turn>\n<start_of_turn>model\n");
    CHECK_THROWS_WITH_AS(render(kGemma, true, true, "<bos>", "<eos>"), "chat template raised: System role not supported",
                         kiln::ChatTemplateError);
}

TEST_CASE("known templates: Phi-3 <|user|> <|end|> format") {
    CHECK(render(kPhi3, true, true, "<s>", "<|endoftext|>") ==
          "<|system|>\nBe brief.<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n<|user|>\nHow are "
          "you?<|end|>\n<|assistant|>\n");
    CHECK(render(kPhi3, false, false, "<s>", "<|endoftext|>") ==
          "<|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n<|user|>\nHow are you?<|end|>\n<|endoftext|>");
}

TEST_CASE("known templates: Zephyr (multi-line template, trim_blocks)") {
    CHECK(render(kZephyr, true, true, "<s>", "</s>") ==
          "<|system|>\nBe brief.</s>\n<|user|>\nHello</s>\n<|assistant|>\nHi there</s>\n<|user|>\nHow are "
          "you?</s>\n<|assistant|>\n");
    CHECK(render(kZephyr, false, false, "<s>", "</s>") ==
          "<|user|>\nHello</s>\n<|assistant|>\nHi there</s>\n<|user|>\nHow are you?</s>\n");
}

TEST_CASE("chat template API: ChatMessage vector, tools, extra vars, fixed clock") {
    auto tmpl = kiln::ChatTemplate::parse(
        "{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m.content }}{% if m.tool_calls is defined %}"
        "[{{ m.tool_calls[0].function.name }}]{% endif %};{% endfor %}"
        "{% if tools %}{{ tools|tojson }}{% endif %}|{{ strftime_now('%d %b %Y') }}|{{ date_string }}");
    std::vector<kiln::ChatMessage> messages = {{"user", "weather?", nlohmann::ordered_json::object()},
                                               {"assistant", "", {{"tool_calls", {{{"function", {{"name", "get_weather"}}}}}}}}};
    kiln::ChatTemplateContext ctx;
    ctx.bos_token = "<s>";
    ctx.tools = nlohmann::ordered_json::parse(R"([{"type": "function", "function": {"name": "get_weather", "parameters": {}}}])");
    ctx.extra_vars["date_string"] = "26 Jul 2024";
    std::tm day{};
    day.tm_year = 2026 - 1900;
    day.tm_mon = 10;
    day.tm_mday = 23;
    ctx.now = day;
    CHECK(tmpl.render(messages, true, ctx) ==
          "<s>user:weather?;assistant:[get_weather];"
          R"([{"type": "function", "function": {"name": "get_weather", "parameters": {}}}])"
          "|23 Nov 2026|26 Jul 2024");
}

TEST_CASE("chat template limits: hostile templates stop with an error instead of hanging or eating memory") {
    kiln::ChatTemplateContext ctx;
    auto messages = nlohmann::ordered_json::array();
    auto fails_with = [&](const std::string& source, const std::string& fragment) {
        INFO(source);
        try {
            kiln::ChatTemplate::parse(source).render(messages, false, ctx);
            FAIL("rendered without error");
        } catch (const kiln::ChatTemplateError& e) {
            CHECK_MESSAGE(std::string(e.what()).find(fragment) != std::string::npos, e.what());
        }
    };
    fails_with("{% for i in range(10**12) %}x{% endfor %}", "Range too big");
    ctx.limits.max_steps = 1'000'000;
    fails_with("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "evaluation steps");
    fails_with("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "nested deeper");
    fails_with("{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
               "exceeds the limit");
    fails_with("{{ 'x' * 10**15 }}", "exceeds the limit");
    fails_with("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}", "nested too deeply");
    fails_with("{{ 2 ** 64 }}", "integer overflow");
}
