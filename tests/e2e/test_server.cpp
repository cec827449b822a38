// End-to-end tests of `kiln serve`: the real binary on a free loopback port, over HTTP.
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>

#include "e2e/server_process.h"
#include "formats/gguf.h"

using nlohmann::json;
using kiln::test::ServerProcess;
using kiln::test::parse_sse;

namespace {

const std::string kModel = kiln::test::model_path("kiln-test-15m-q8_0.gguf");
const char* kJson = "application/json";

// A Zephyr-style template whose markup is plain text for the test model's vocabulary.
const std::string kTemplate =
    "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}";

std::string base_args(const std::string& extra = "") {
    return "-m " + kiln::test::shell_quote(kModel) + " -t 2 -c 512 " + extra;
}

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("kiln-serve-test-" + std::to_string(::getpid()) + "-" + name)).string();
}

// A copy of the test model with tokenizer.chat_template set (the shared models have none).
std::string model_with_template() {
    static const std::string path = [] {
        const std::string p = temp_path("chat.gguf");
        kiln::GgufFile src = kiln::GgufFile::open(kModel);
        kiln::GgufWriter w(src.alignment());
        for (const auto& kv : src.metadata())
            if (kv.key != "general.alignment") w.set(kv.key, kv.value);
        w.set("tokenizer.chat_template", kiln::GgufValue::str(kTemplate));
        for (const auto& t : src.tensors())
            w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims), t.data, size_t(t.n_bytes));
        w.write(p);
        return p;
    }();
    return path;
}

json post_json(httplib::Client& c, const std::string& path, const json& body, int* status = nullptr) {
    auto r = c.Post(path.c_str(), body.dump(), kJson);
    REQUIRE(r);
    if (status) *status = r->status;
    return json::parse(r->body);
}

std::string completion_text(httplib::Client& c, const std::string& prompt, int max_tokens, json* usage = nullptr) {
    json b = {{"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}};
    int status = 0;
    json r = post_json(c, "/v1/completions", b, &status);
    REQUIRE(status == 200);
    if (usage) *usage = r["usage"];
    return r["choices"][0]["text"].get<std::string>();
}

// Streams a completion and returns the concatenated text; with logprobs, each
// token's logprob is appended too, so equal strings mean bit-identical logits.
// A greedy stream: its text, and each token's text and logprob (the end-of-text
// token has a logprob but no text).
struct TokenTrace {
    std::string text;
    std::vector<std::pair<std::string, double>> tokens;
};

TokenTrace stream_trace(httplib::Client& c, const std::string& prompt, int max_tokens) {
    json b = {{"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}, {"stream", true}, {"logprobs", 1}};
    auto r = c.Post("/v1/completions", b.dump(), kJson);
    REQUIRE(r);
    REQUIRE(r->status == 200);
    auto sse = parse_sse(r->body);
    CHECK(sse.done_last);
    TokenTrace trace;
    for (const auto& e : sse.events) {
        trace.text += e["choices"][0]["text"].get<std::string>();
        const json& lp = e["choices"][0]["logprobs"];
        if (lp.is_null()) continue;
        for (size_t i = 0; i < lp["tokens"].size(); ++i)
            trace.tokens.emplace_back(lp["tokens"][i].get<std::string>(), lp["token_logprobs"][i].get<double>());
    }
    return trace;
}

// Same tokens, and logprobs within `tol`: a batch of other sequences changes
// the float summation order, and 8-bit activation rounding can turn an ulp into
// a step of ~1e-2, but KV leaking between slots moves logprobs by whole units.
std::string trace_difference(const TokenTrace& ta, const TokenTrace& tb, double tol = 0.1) {
    if (ta.text != tb.text) return "text '" + ta.text + "' vs '" + tb.text + "'";
    const auto& a = ta.tokens;
    const auto& b = tb.tokens;
    if (a.size() != b.size()) return "lengths " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        if (a[i].first != b[i].first) return "token " + std::to_string(i) + ": '" + a[i].first + "' vs '" + b[i].first + "'";
        if (std::fabs(a[i].second - b[i].second) > tol)
            return "token " + std::to_string(i) + " logprob " + std::to_string(a[i].second) + " vs " + std::to_string(b[i].second);
    }
    return "";
}


void check_error(const json& body, const std::string& param_or_empty) {
    REQUIRE(body.contains("error"));
    const json& e = body["error"];
    CHECK(e["message"].is_string());
    CHECK(!e["message"].get<std::string>().empty());
    CHECK(e["type"].is_string());
    CHECK(e.contains("param"));
    CHECK(e.contains("code"));
    if (!param_or_empty.empty()) CHECK(e["param"] == param_or_empty);
}

json metrics(httplib::Client& c) {
    auto r = c.Get("/metrics");
    REQUIRE(r);
    REQUIRE(r->status == 200);
    json m = json::object();
    std::istringstream in(r->body);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        const auto sp = line.find(' ');
        m[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
    }
    return m;
}

// The metrics once every slot is free again: a slot is released just after its
// response goes out, so a client that asks at once may still see it busy.
json metrics_when_idle(httplib::Client& c) {
    json m = metrics(c);
    for (int i = 0; i < 100 && m["kiln_slots_busy"] != 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        m = metrics(c);
    }
    return m;
}

std::vector<std::string> reference_prompts() {
    std::ifstream in(kiln::test::reference_path("prompts.txt"));
    std::vector<std::string> p;
    std::string line;
    while (std::getline(in, line))
        if (!line.empty()) p.push_back(line);
    return p;
}

}  // namespace

TEST_CASE("serve: health, models, completions with usage, tokenize round trip") {
    ServerProcess s(base_args());
    auto c = s.client();
    auto h = c.Get("/health");
    REQUIRE(h);
    CHECK(h->status == 200);
    auto m = c.Get("/v1/models");
    REQUIRE(m);
    json models = json::parse(m->body);
    CHECK(models["object"] == "list");
    CHECK(models["data"][0]["id"] == "kiln-test-15m-q8_0");

    json r = post_json(c, "/v1/completions", {{"model", "kiln-test-15m-q8_0"}, {"prompt", "Once upon a time"}, {"max_tokens", 12}, {"temperature", 0}});
    CHECK(r["object"] == "text_completion");
    CHECK(r["choices"][0]["text"].get<std::string>().size() > 0);
    CHECK(r["usage"]["prompt_tokens"] == 5);
    CHECK(r["usage"]["completion_tokens"].get<int>() <= 12);
    CHECK(r["usage"]["total_tokens"] == r["usage"]["prompt_tokens"].get<int>() + r["usage"]["completion_tokens"].get<int>());

    json t = post_json(c, "/tokenize", {{"content", "Hello world! Once upon a time"}});
    CHECK(t["tokens"] == json({15043, 3186, 29991, 9038, 2501, 263, 931}));
    json d = post_json(c, "/detokenize", {{"tokens", t["tokens"]}});
    CHECK(d["content"] == "Hello world! Once upon a time");

    // echo and several prompts: one choice each.
    json e = post_json(c, "/v1/completions", {{"prompt", json::array({"The cat", "A dog"})}, {"max_tokens", 4}, {"echo", true}, {"temperature", 0}});
    REQUIRE(e["choices"].size() == 2);
    CHECK(e["choices"][0]["text"].get<std::string>().rfind("The cat", 0) == 0);
    CHECK(e["choices"][1]["text"].get<std::string>().rfind("A dog", 0) == 0);
}

TEST_CASE("serve: SSE stream shape (same id, finish_reason, usage chunk, [DONE] last)") {
    ServerProcess s(base_args("--chat-template " + kiln::test::shell_quote([] {
        const std::string p = temp_path("template.jinja");
        std::ofstream(p) << kTemplate;
        return p;
    }())));
    auto c = s.client();
    json body = {{"messages", {{{"role", "user"}, {"content", "Tell me about the sea."}}}},
                 {"stream", true}, {"stream_options", {{"include_usage", true}}}, {"max_tokens", 10}, {"temperature", 0}};
    auto r = c.Post("/v1/chat/completions", body.dump(), kJson);
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->get_header_value("Content-Type").find("text/event-stream") == 0);
    auto sse = parse_sse(r->body);
    CHECK(sse.done_last);
    CHECK(sse.n_done == 1);
    REQUIRE(sse.events.size() >= 3);
    const json& first = sse.events.front();
    CHECK(first["object"] == "chat.completion.chunk");
    CHECK(first["choices"][0]["delta"]["role"] == "assistant");
    std::string text;
    int finishes = 0;
    for (const auto& e : sse.events) {
        CHECK(e["id"] == first["id"]);
        CHECK(e["created"] == first["created"]);
        if (e["choices"].empty()) continue;
        if (e["choices"][0]["delta"].contains("content")) text += e["choices"][0]["delta"]["content"].get<std::string>();
        if (!e["choices"][0]["finish_reason"].is_null()) {
            ++finishes;
            CHECK((e["choices"][0]["finish_reason"] == "stop" || e["choices"][0]["finish_reason"] == "length"));
        }
    }
    CHECK(finishes == 1);
    const json& usage_chunk = sse.events.back();
    CHECK(usage_chunk["choices"].empty());
    CHECK(usage_chunk["usage"]["completion_tokens"].get<int>() >= 1);

    // The same request without streaming gives the same text (greedy).
    body.erase("stream");
    body.erase("stream_options");
    json full = post_json(c, "/v1/chat/completions", body);
    CHECK(full["choices"][0]["message"]["content"] == text);
    CHECK(full["usage"]["prompt_tokens"].get<int>() > 10);
    CHECK(full["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>() > 0);  // the previous turn's prefix
}

TEST_CASE("serve: chat template from the GGUF, multi-turn reuses the cached prefix, no template is a 400") {
    {
        ServerProcess s("-m " + kiln::test::shell_quote(model_with_template()) + " -t 2 -c 512");
        auto c = s.client();
        json msgs = json::array({{{"role", "system"}, {"content", "You write short sentences."}},
                                 {{"role", "user"}, {"content", [] {
                                      json parts = json::array();
                                      parts.push_back({{"type", "text"}, {"text", "Tell me about "}});
                                      parts.push_back({{"type", "text"}, {"text", "the river."}});
                                      return parts;
                                  }()}}});
        json r1 = post_json(c, "/v1/chat/completions", {{"messages", msgs}, {"max_tokens", 16}, {"temperature", 0}});
        CHECK(r1["object"] == "chat.completion");
        CHECK(r1["choices"][0]["message"]["role"] == "assistant");
        const std::string answer = r1["choices"][0]["message"]["content"];
        msgs.push_back({{"role", "assistant"}, {"content", answer}});
        msgs.push_back({{"role", "user"}, {"content", "And the sea?"}});
        json r2 = post_json(c, "/v1/chat/completions", {{"messages", msgs}, {"max_tokens", 8}, {"temperature", 0}});
        const int prompt2 = r2["usage"]["prompt_tokens"];
        const int cached2 = r2["usage"]["prompt_tokens_details"]["cached_tokens"];
        // The second turn only evaluates what follows the first turn's prompt.
        CHECK(cached2 >= r1["usage"]["prompt_tokens"].get<int>());
        CHECK(cached2 < prompt2);
    }
    {
        ServerProcess s(base_args());
        auto c = s.client();
        int status = 0;
        json r = post_json(c, "/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "hi"}}}}}, &status);
        CHECK(status == 400);
        check_error(r, "messages");
        CHECK(r["error"]["code"] == "chat_template_missing");
        CHECK(r["error"]["message"].get<std::string>().find("chat template") != std::string::npos);
    }
}

TEST_CASE("serve: malformed requests get OpenAI errors with the right status, and the server stays healthy") {
    ServerProcess s(base_args("--max-body 65536"));
    auto c = s.client();
    struct Case {
        const char* path;
        std::string body;
        int status;
        const char* param;  // "" = don't check
    };
    const std::string big(70000, 'a');
    const std::vector<Case> cases = {
        {"/v1/completions", "{not json", 400, ""},
        {"/v1/completions", "[1,2]", 400, ""},
        {"/v1/completions", R"({"prompt":"hi","max_tokens":"ten"})", 400, "max_tokens"},
        {"/v1/completions", R"({"prompt":"hi","max_tokens":-5})", 400, "max_tokens"},
        {"/v1/completions", R"({"prompt":"hi","max_tokens":1e12})", 400, "max_tokens"},
        {"/v1/completions", R"({"prompt":"hi","max_tokens":2.5})", 400, "max_tokens"},
        {"/v1/completions", R"({"prompt":"hi","temperature":-1})", 400, "temperature"},
        {"/v1/completions", R"({"prompt":"hi","temperature":"hot"})", 400, "temperature"},
        {"/v1/completions", R"({"prompt":"hi","top_p":5})", 400, "top_p"},
        {"/v1/completions", R"({"prompt":"hi","top_k":-1})", 400, "top_k"},
        {"/v1/completions", R"({"prompt":"hi","min_p":2})", 400, "min_p"},
        {"/v1/completions", R"({"prompt":"hi","presence_penalty":9})", 400, "presence_penalty"},
        {"/v1/completions", R"({"prompt":"hi","frequency_penalty":-9})", 400, "frequency_penalty"},
        {"/v1/completions", R"({"prompt":"hi","repeat_penalty":0})", 400, "repeat_penalty"},
        {"/v1/completions", R"({"prompt":"hi","stop":5})", 400, "stop"},
        {"/v1/completions", R"({"prompt":"hi","stop":[""]})", 400, "stop"},
        {"/v1/completions", R"({"prompt":"hi","n":0})", 400, "n"},
        {"/v1/completions", R"({"prompt":"hi","seed":"x"})", 400, "seed"},
        {"/v1/completions", R"({"prompt":"hi","stream":"yes"})", 400, "stream"},
        {"/v1/completions", R"({"prompt":"hi","logit_bias":{"abc":1}})", 400, "logit_bias"},
        {"/v1/completions", R"({"prompt":"hi","logit_bias":{"5":1000}})", 400, "logit_bias"},
        {"/v1/completions", R"({"prompt":"hi","response_format":{"type":"yaml"}})", 400, "response_format"},
        {"/v1/completions", R"({"prompt":"hi","response_format":{"type":"json_schema","json_schema":{"schema":{"type":"string","pattern":"a+"}}}})", 400, "response_format"},
        {"/v1/completions", R"({"prompt":5})", 400, "prompt"},
        {"/v1/completions", R"({"prompt":[]})", 400, "prompt"},
        {"/v1/completions", R"({"prompt":[1, 99999999]})", 400, "prompt"},
        {"/v1/completions", R"({"max_tokens":3})", 400, "prompt"},
        {"/v1/completions", R"({"prompt":"hi","model":"gpt-4"})", 404, "model"},
        {"/v1/completions", "{\"prompt\":\"bad \xff\xfe utf8\"}", 400, ""},
        {"/v1/completions", R"({"prompt":")" + std::string(3000, 'x') + " " + std::string(3000, 'y') + R"("})", 400, "prompt"},
        {"/v1/completions", R"({"prompt":")" + big + R"("})", 413, ""},
        {"/v1/chat/completions", R"({"messages":"hi"})", 400, "messages"},
        {"/v1/chat/completions", R"({"messages":[]})", 400, "messages"},
        {"/v1/chat/completions", R"({"messages":[{"role":"wizard","content":"x"}]})", 400, "messages[0].role"},
        {"/v1/chat/completions", R"({"messages":[{"role":"user","content":7}]})", 400, "messages[0].content"},
        {"/v1/chat/completions", R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})", 400, "messages[0].content[0].type"},
        {"/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":50})", 400, "top_logprobs"},
        {"/v1/embeddings", R"({"input":7})", 400, "input"},
        {"/v1/embeddings", R"({})", 400, "input"},
        {"/tokenize", R"({"content":5})", 400, "content"},
        {"/detokenize", R"({"tokens":[-1]})", 400, "tokens"},
        {"/detokenize", R"({"tokens":"abc"})", 400, "tokens"},
    };
    for (const auto& k : cases) {
        CAPTURE(k.path);
        CAPTURE(k.body.substr(0, 200));
        auto r = c.Post(k.path, k.body, kJson);
        REQUIRE(r);
        CHECK(r->status == k.status);
        json body = json::parse(r->body);
        check_error(body, k.param);
        if (k.status == 400 && std::string(k.param) == "prompt" && k.body.size() > 5000 && k.body.size() < 65536) {
            CHECK(body["error"]["code"] == "context_length_exceeded");
            CHECK(body["error"]["message"].get<std::string>().find("512") != std::string::npos);
        }
        auto h = c.Get("/health");
        REQUIRE(h);
        CHECK(h->status == 200);
    }
    auto nf = c.Get("/v1/nothing");
    REQUIRE(nf);
    CHECK(nf->status == 404);
    check_error(json::parse(nf->body), "");
    // Still serving after all of that.
    CHECK(!completion_text(c, "The dog", 4).empty());
}

TEST_CASE("serve: a 64 MiB body is refused with 413 at once, chunked bodies with 411") {
    ServerProcess s(base_args());
    const int fd = kiln::test::connect_loopback(s.port());
    REQUIRE(fd >= 0);
    const std::string head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                             std::to_string(64u << 20) + "\r\n\r\n";
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(::send(fd, head.data(), head.size(), MSG_NOSIGNAL) == ssize_t(head.size()));
    // Send the body in pieces while reading: the answer must come without the server buffering it.
    std::string reply;
    std::vector<char> chunk(1 << 20, 'a');
    size_t sent = 0;
    while (sent < (64u << 20) && reply.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) sent += size_t(n);
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 5) > 0) {
            char buf[4096];
            const ssize_t m = ::recv(fd, buf, sizeof buf, 0);
            if (m <= 0) break;
            reply.append(buf, size_t(m));
        }
    }
    for (int i = 0; i < 200 && reply.find("}}") == std::string::npos; ++i) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) continue;
        char buf[4096];
        const ssize_t m = ::recv(fd, buf, sizeof buf, 0);
        if (m <= 0) break;
        reply.append(buf, size_t(m));
    }
    ::close(fd);
    CHECK(reply.rfind("HTTP/1.1 413", 0) == 0);
    CHECK(reply.find("request_too_large") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));

    auto c = s.client();
    httplib::Headers chunked = {{"Transfer-Encoding", "chunked"}};
    auto r = c.Post("/v1/completions", chunked, std::string(R"({"prompt":"hi"})"), kJson);
    // httplib sends a Content-Length anyway when given a string body; the route then works.
    REQUIRE(r);
    CHECK((r->status == 411 || r->status == 200));
    auto h = c.Get("/health");
    REQUIRE(h);
    CHECK(h->status == 200);
}

TEST_CASE("serve: --api-key guards every route but /health, CORS only with --cors, off-loopback needs a key") {
    {
        ServerProcess s(base_args("--api-key sekrit"));
        auto c = s.client();
        auto h = c.Get("/health");
        REQUIRE(h);
        CHECK(h->status == 200);
        auto m = c.Get("/v1/models");
        REQUIRE(m);
        CHECK(m->status == 401);
        check_error(json::parse(m->body), "");
        auto bad = c.Get("/v1/models", {{"Authorization", "Bearer wrong"}});
        REQUIRE(bad);
        CHECK(bad->status == 401);
        auto ok = c.Get("/v1/models", {{"Authorization", "Bearer sekrit"}});
        REQUIRE(ok);
        CHECK(ok->status == 200);
        auto r = c.Post("/v1/completions", {{"Authorization", "Bearer sekrit"}}, R"({"prompt":"hi","max_tokens":2})", kJson);
        REQUIRE(r);
        CHECK(r->status == 200);
        CHECK(!ok->has_header("Access-Control-Allow-Origin"));
    }
    {
        ServerProcess s(base_args("--cors https://app.example"));
        auto c = s.client();
        auto r = c.Get("/v1/models", {{"Origin", "https://app.example"}});
        REQUIRE(r);
        CHECK(r->get_header_value("Access-Control-Allow-Origin") == "https://app.example");
        auto pre = c.Options("/v1/chat/completions", {{"Origin", "https://app.example"}, {"Access-Control-Request-Method", "POST"}});
        REQUIRE(pre);
        CHECK(pre->status == 204);
        CHECK(pre->get_header_value("Access-Control-Allow-Headers").find("Authorization") != std::string::npos);
    }
    auto r = kiln::test::run_kiln_process("serve --port 0 --host 0.0.0.0 -m " + kiln::test::shell_quote(kModel));
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("--api-key") != std::string::npos);
}

TEST_CASE("serve: 8+ concurrent greedy streams equal their answers alone, the cached prefix changes nothing") {
    ServerProcess s(base_args("--parallel 8 -c 256"));
    auto prompts = reference_prompts();
    REQUIRE(prompts.size() >= 4);
    std::vector<std::string> requests;
    for (size_t i = 0; i < 12; ++i) requests.push_back(prompts[i % prompts.size()] + (i >= prompts.size() ? " and then" : ""));
    const int max_tokens = 40;
    std::vector<TokenTrace> alone;
    {
        auto c = s.client();
        for (const auto& p : requests) alone.push_back(stream_trace(c, p, max_tokens));
    }
    std::vector<std::future<TokenTrace>> futures;
    for (const auto& p : requests)
        futures.push_back(std::async(std::launch::async, [&s, p] {
            auto c = s.client();
            return stream_trace(c, p, max_tokens);
        }));
    for (size_t i = 0; i < requests.size(); ++i) {
        CAPTURE(requests[i]);
        CHECK(trace_difference(futures[i].get(), alone[i]) == "");
    }
    // Again alone: now the whole prompt but its last token comes from a slot's cache.
    auto c = s.client();
    json usage;
    CHECK(completion_text(c, requests[0], max_tokens, &usage) == alone[0].text);
    CHECK(usage["prompt_tokens_details"]["cached_tokens"].get<int>() >= 1);
    // Nothing leaks: every slot is free again and the cache holds only finished prefixes.
    json m = metrics_when_idle(c);
    CHECK(m["kiln_slots_busy"] == 0);
    CHECK(m["kiln_queue_depth"] == 0);
    CHECK(m["kiln_requests_failed_total"] == 0);
    CHECK(m["kiln_kv_cache_cells_used"].get<double>() <= 8 * 256);
}

TEST_CASE("serve: a client that disconnects mid-stream frees its slot, a full queue answers 503 + Retry-After") {
    ServerProcess s(base_args("--parallel 1 --queue 1"));
    // Ban EOS so the stream runs until max_tokens.
    const std::string long_req =
        R"({"prompt":"Once upon a time","max_tokens":400,"temperature":0,"stream":true,"logit_bias":{"2":-100}})";
    const int fd = kiln::test::connect_loopback(s.port());
    REQUIRE(fd >= 0);
    const std::string req = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                            std::to_string(long_req.size()) + "\r\n\r\n" + long_req;
    REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == ssize_t(req.size()));
    std::string got;
    while (got.find("data: ") == std::string::npos) {
        char buf[1024];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        REQUIRE(n > 0);
        got.append(buf, size_t(n));
    }
    auto c = s.client();
    // The one slot is busy: one request may wait, the next is turned away.
    auto waiting = std::async(std::launch::async, [&s] {
        auto c2 = s.client();
        auto r = c2.Post("/v1/completions", R"({"prompt":"The dog","max_tokens":3,"temperature":0})", kJson);
        return r ? r->status : -1;
    });
    for (int i = 0; i < 100 && metrics(c)["kiln_queue_depth"] != 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto busy = c.Post("/v1/completions", R"({"prompt":"The cat","max_tokens":3})", kJson);
    REQUIRE(busy);
    CHECK(busy->status == 503);
    CHECK(busy->get_header_value("Retry-After") == "1");
    check_error(json::parse(busy->body), "");

    ::close(fd);  // the streaming client goes away
    CHECK(waiting.get() == 200);  // its slot went to the waiting request long before 400 tokens
    json m = metrics_when_idle(c);
    CHECK(m["kiln_requests_cancelled_total"] == 1);
    CHECK(m["kiln_generated_tokens_total"].get<double>() < 400);
    CHECK(m["kiln_slots_busy"] == 0);
}

TEST_CASE("serve: stop strings, n, logprobs, seeds, json_schema output, embeddings, metrics") {
    ServerProcess s(base_args());
    auto c = s.client();
    const std::string full = completion_text(c, "Once upon a time", 24);
    REQUIRE(full.size() > 12);
    const std::string stop = full.substr(6, 4);
    json r = post_json(c, "/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", 24}, {"temperature", 0}, {"stop", stop}});
    CHECK(r["choices"][0]["text"] == full.substr(0, full.find(stop)));
    CHECK(r["choices"][0]["finish_reason"] == "stop");

    json n2 = post_json(c, "/v1/completions", {{"prompt", "The dog"}, {"max_tokens", 6}, {"n", 2}, {"temperature", 1.0}, {"seed", 7}});
    REQUIRE(n2["choices"].size() == 2);
    json n2b = post_json(c, "/v1/completions", {{"prompt", "The dog"}, {"max_tokens", 6}, {"n", 2}, {"temperature", 1.0}, {"seed", 7}});
    CHECK(n2b["choices"][0]["text"] == n2["choices"][0]["text"]);  // same seed, same text

    json lp = post_json(c, "/v1/completions", {{"prompt", "The dog"}, {"max_tokens", 3}, {"temperature", 0}, {"logprobs", 3}});
    const json& L = lp["choices"][0]["logprobs"];
    REQUIRE(L["tokens"].size() == 3);
    REQUIRE(L["top_logprobs"][0].size() == 3);
    double best = -1e9;
    for (auto& [k, v] : L["top_logprobs"][0].items()) best = std::max(best, v.get<double>());
    CHECK(L["token_logprobs"][0].get<double>() == doctest::Approx(best));

    json schema = {{"type", "object"},
                   {"properties", {{"answer", {{"enum", {"yes", "no"}}}}, {"count", {{"type", "integer"}}}, {"ok", {{"type", "boolean"}}}}},
                   {"required", {"answer", "count", "ok"}}};
    json js = post_json(c, "/v1/completions", {{"prompt", "Is the sky blue?"}, {"max_tokens", 60}, {"temperature", 0},
                                              {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "a"}, {"schema", schema}}}}}});
    const json out = json::parse(js["choices"][0]["text"].get<std::string>());
    CHECK((out["answer"] == "yes" || out["answer"] == "no"));
    CHECK(out["count"].is_number_integer());
    CHECK(out["ok"].is_boolean());
    CHECK(js["choices"][0]["finish_reason"] == "stop");

    json e = post_json(c, "/v1/embeddings", {{"input", json::array({"the cat sat", "the cat sat", "a stock market report"})}});
    REQUIRE(e["data"].size() == 3);
    auto vec = [&](int i) { return e["data"][i]["embedding"].get<std::vector<double>>(); };
    const auto a = vec(0), b = vec(1), x = vec(2);
    CHECK(a.size() == 288);
    double na = 0, ab = 0, ax = 0;
    for (size_t i = 0; i < a.size(); ++i) na += a[i] * a[i], ab += a[i] * b[i], ax += a[i] * x[i];
    CHECK(na == doctest::Approx(1.0).epsilon(1e-4));
    CHECK(ab == doctest::Approx(1.0).epsilon(1e-4));
    CHECK(ax < 0.999);
    CHECK(e["usage"]["prompt_tokens"].get<int>() > 6);

    json m = metrics(c);
    for (const char* k : {"kiln_http_requests_total", "kiln_prompt_tokens_total", "kiln_generated_tokens_total",
                          "kiln_generated_tokens_per_second", "kiln_queue_depth", "kiln_kv_cache_cells_used", "kiln_kv_cache_usage_ratio"})
        CHECK(m.contains(k));
    CHECK(m["kiln_generated_tokens_total"].get<double>() > 30);
}

TEST_CASE("serve: /health is 503 while the model loads") {
    ServerProcess s(base_args(), false, "KILN_SERVE_TEST_LOAD_DELAY_MS=1500");
    auto c = s.client();
    auto h = c.Get("/health");
    REQUIRE(h);
    CHECK(h->status == 503);
    auto m = c.Get("/v1/models");
    REQUIRE(m);
    CHECK(m->status == 503);
    for (int i = 0; i < 100; ++i) {
        h = c.Get("/health");
        if (h && h->status == 200) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    CHECK(h->status == 200);
}

TEST_CASE("serve: the official openai npm client (chat, stream, completions, models, an error)") {
    const std::filesystem::path dir = std::filesystem::path(KILN_SOURCE_DIR) / "tests" / "e2e" / "openai";
    REQUIRE_MESSAGE(std::filesystem::exists(dir / "node_modules" / "openai"),
                    "run `npm ci` (or `npm install`) in tests/e2e/openai first");
    ServerProcess s("-m " + kiln::test::shell_quote(model_with_template()) + " -t 2 -c 512 --api-key test-key");
    const std::string cmd = "cd " + kiln::test::shell_quote(dir.string()) + " && KILN_URL=http://127.0.0.1:" +
                            std::to_string(s.port()) + "/v1 KILN_API_KEY=test-key KILN_MODEL=" +
                            kiln::test::shell_quote(std::filesystem::path(model_with_template()).stem().string()) +
                            " node test.mjs 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p);
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int status = ::pclose(p);
    CAPTURE(out);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(out.find("openai client: all checks passed") != std::string::npos);
}
