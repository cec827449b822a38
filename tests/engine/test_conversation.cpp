// Conversation: rendering through built-in and real chat templates, one BOS only,
// trimming the oldest turns to fit a context, JSON save/load in the OpenAI shape.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "engine/conversation.h"
#include "formats/gguf.h"
#include "test_paths.h"

using namespace kiln;

namespace {

std::unique_ptr<Tokenizer> tokenizer_of(const std::string& model) {
    return Tokenizer::from_gguf(GgufFile::open(test::model_path(model)));
}

ChatFormat format(const std::string& name) {
    auto f = builtin_chat_format(name);
    REQUIRE(f.has_value());
    return *f;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in.good());
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

long count(const std::vector<int32_t>& v, int32_t x) { return std::count(v.begin(), v.end(), x); }

}  // namespace

TEST_CASE("conversation: the plain transcript format renders the system prompt and turns and the generation prompt") {
    auto tok = tokenizer_of("stories260K.gguf");
    Conversation c(format("plain"), *tok);
    c.set_system("You tell stories.");
    c.add("user", "Tell me about Lily.");
    c.add("assistant", "Lily was a girl.");
    c.add("user", "And then?");
    CHECK(c.render(true) ==
          "You tell stories.\n\nUser: Tell me about Lily.\nAssistant: Lily was a girl.\nUser: And then?\nAssistant:");
    CHECK(c.render(false) ==
          "You tell stories.\n\nUser: Tell me about Lily.\nAssistant: Lily was a girl.\nUser: And then?\n");
    CHECK(c.format().stop == std::vector<std::string>{"\nUser:"});
    c.set_system("");
    CHECK(c.render(true).starts_with("User: Tell me"));
    c.clear();
    CHECK(c.turns().empty());
    CHECK(c.render(true) == "Assistant:");
    CHECK_THROWS_AS(c.add("tool", "x"), ConversationError);
}

TEST_CASE("conversation: exactly one BOS whether or not the template writes it") {
    auto tok = tokenizer_of("kiln-test-15m-q8_0.gguf");
    const int32_t bos = *tok->bos(), eos = *tok->eos();
    SUBCASE("template without BOS: the vocabulary's add_bos adds one") {
        Conversation c(format("plain"), *tok);
        c.add("user", "Hello there");
        const auto t = c.prompt(1000, 1000).tokens;
        REQUIRE(!t.empty());
        CHECK(t[0] == bos);
        CHECK(count(t, bos) == 1);
    }
    SUBCASE("template writing <s> itself (llama2): not added again; </s> markup is the EOS token") {
        Conversation c(format("llama2"), *tok);
        c.set_system("Be brief.");
        c.add("user", "Hello there");
        c.add("assistant", "Hi.");
        c.add("user", "How are you?");
        const std::string text = c.render(true);
        CHECK(text == "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHello there [/INST] Hi. </s><s>[INST] How are you? [/INST]");
        const auto t = c.tokenize(text);
        CHECK(t[0] == bos);
        CHECK(t[1] != bos);
        CHECK(count(t, bos) == 2);  // one per [INST] block, as the template says
        CHECK(count(t, eos) == 1);
    }
    SUBCASE("a real model template (Mistral Nemo) starting with bos_token") {
        ChatFormat f{"mistral-nemo", read_text((test::shared_dir() / "chat-templates" /
                                                "mistralai-Mistral-Nemo-Instruct-2407.jinja").string()), {}};
        Conversation c(f, *tok);
        c.add("user", "Hello");
        const std::string text = c.render(true);
        CHECK(text == "<s>[INST]Hello[/INST]");
        const auto t = c.tokenize(text);
        CHECK(t[0] == bos);
        CHECK(count(t, bos) == 1);
    }
}

TEST_CASE("conversation: the prompt drops the oldest turns but never the system prompt or the last message") {
    auto tok = tokenizer_of("stories260K.gguf");
    Conversation c(format("plain"), *tok);
    c.set_system("Stories.");
    for (int i = 0; i < 10; ++i) {
        c.add("user", "Question number " + std::to_string(i) + " about the little dog?");
        c.add("assistant", "The little dog ran to the park and played with a ball all day long.");
    }
    c.add("user", "Last question?");
    const int64_t full = int64_t(c.prompt(1 << 20, 1 << 20).tokens.size());
    CHECK(c.turns().size() == 21);

    SUBCASE("fits: nothing dropped") {
        const auto p = c.prompt(full, full);
        CHECK(p.dropped_turns == 0);
        CHECK(int64_t(p.tokens.size()) == full);
    }
    SUBCASE("too long: trimmed to the target, whole turns at a time") {
        const int64_t limit = full - 1, target = full / 2;
        const auto p = c.prompt(limit, target);
        CHECK(p.dropped_turns > 0);
        CHECK(int64_t(p.tokens.size()) <= target);
        CHECK(c.turns().size() == 21 - 2 * p.dropped_turns);
        CHECK(c.turns().front().role == "user");
        CHECK(c.turns().back().content == "Last question?");
        CHECK(c.system() == "Stories.");
        CHECK(c.render(true).starts_with("Stories.\n\nUser: Question number " + std::to_string(p.dropped_turns)));
        // Just enough more room: no further trimming.
        const auto again = c.prompt(limit, target);
        CHECK(again.dropped_turns == 0);
    }
    SUBCASE("the last message alone does not fit: an error, and the conversation is unchanged") {
        try {
            c.prompt(5, 5);
            FAIL("expected ConversationError");
        } catch (const ConversationError& e) {
            CHECK(std::string(e.what()).find("raise the context size (-c)") != std::string::npos);
        }
        CHECK(c.turns().size() == 21);
        CHECK(int64_t(c.prompt(1 << 20, 1 << 20).tokens.size()) == full);
    }
}

TEST_CASE("conversation: JSON in the OpenAI messages shape round-trips and bad JSON is refused whole") {
    auto tok = tokenizer_of("stories260K.gguf");
    Conversation c(format("plain"), *tok);
    c.set_system("Sys");
    c.add("user", "Hi \"there\"\nline two");
    c.add("assistant", "Hello");
    const auto j = c.to_json();
    CHECK(j.dump() ==
          R"([{"role":"system","content":"Sys"},{"role":"user","content":"Hi \"there\"\nline two"},{"role":"assistant","content":"Hello"}])");

    Conversation d(format("plain"), *tok);
    d.load_json(nlohmann::json::parse(j.dump()));
    CHECK(d.render(true) == c.render(true));

    // An OpenAI request body works too; a null content is an empty one.
    d.load_json(nlohmann::json::parse(R"({"model":"x","messages":[{"role":"user","content":null}]})"));
    CHECK(d.system().empty());
    REQUIRE(d.turns().size() == 1);
    CHECK(d.turns()[0].content.empty());

    const char* bad[] = {
        R"({"role":"user"})",
        R"([{"role":"user","content":5}])",
        R"([{"content":"x"}])",
        R"([{"role":"wizard","content":"x"}])",
        R"([{"role":"user","content":"x"},{"role":"system","content":"late"}])",
        R"([7])",
    };
    for (const char* b : bad) {
        CAPTURE(b);
        CHECK_THROWS_AS(d.load_json(nlohmann::json::parse(b)), ConversationError);
        CHECK(d.turns().size() == 1);  // unchanged
    }
    try {
        d.load_json(nlohmann::json::parse(R"([{"role":"user","content":"a"},{"role":"wizard","content":"x"}])"));
    } catch (const ConversationError& e) {
        CHECK(std::string(e.what()) == "message 2: role 'wizard' is not one of system, user, assistant");
    }
}

TEST_CASE("conversation: every built-in format parses and renders a conversation") {
    auto tok = tokenizer_of("kiln-test-15m-q8_0.gguf");
    for (const auto& name : builtin_chat_format_names()) {
        CAPTURE(name);
        Conversation c(format(name), *tok);
        c.set_system("S");
        c.add("user", "U");
        c.add("assistant", "A");
        c.add("user", "V");
        const std::string text = c.render(true);
        CHECK(text.find('U') != std::string::npos);
        CHECK(text.find('V') > text.find('A'));
        CHECK(count(c.tokenize(text), *tok->bos()) >= 1);
    }
    CHECK_FALSE(builtin_chat_format("nope").has_value());
    CHECK(builtin_chat_format("chatml")->source.find("<|im_start|>") != std::string::npos);
}
