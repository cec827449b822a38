#include "server/generate.h"

#include <httplib.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <random>

#include "server/api_error.h"
#include "server/json_constraint.h"

namespace kiln::server {

namespace {
using nlohmann::json;
using namespace std::chrono_literals;

std::string random_id(const char* prefix) {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    static const char* hex = "0123456789abcdef";
    std::string s = prefix;
    for (int i = 0; i < 24; ++i) s += hex[rng() & 15];
    return s;
}

const char* finish_name(FinishReason r) { return r == FinishReason::Length ? "length" : "stop"; }

// JSON has no -inf: a token the model gives no mass gets a very negative logprob.
double finite_logprob(float lp) { return std::isfinite(lp) ? double(lp) : -9999.0; }

json bytes_of(const std::string& s) {
    json b = json::array();
    for (unsigned char c : s) b.push_back(int(c));
    return b;
}

// Chat logprobs: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}.
json chat_logprobs(const Tokenizer& tok, const std::vector<GeneratedToken>& tokens) {
    json content = json::array();
    for (const auto& t : tokens) {
        if (!t.chosen) continue;
        const std::string piece = tok.token_to_piece(t.id, true);
        json top = json::array();
        for (const auto& a : t.top) {
            const std::string p = tok.token_to_piece(a.token, true);
            top.push_back({{"token", p}, {"logprob", finite_logprob(a.logprob)}, {"bytes", bytes_of(p)}});
        }
        content.push_back({{"token", piece}, {"logprob", finite_logprob(t.chosen->logprob)}, {"bytes", bytes_of(piece)}, {"top_logprobs", top}});
    }
    return {{"content", content}};
}

// Legacy completions logprobs: parallel arrays.
json completion_logprobs(const Tokenizer& tok, const std::vector<GeneratedToken>& tokens, size_t text_offset) {
    json toks = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
    for (const auto& t : tokens) {
        if (!t.chosen) continue;
        const std::string piece = tok.token_to_piece(t.id, true);
        toks.push_back(piece);
        lps.push_back(finite_logprob(t.chosen->logprob));
        json top = json::object();
        for (const auto& a : t.top) top[tok.token_to_piece(a.token, true)] = finite_logprob(a.logprob);
        tops.push_back(top);
        offsets.push_back(text_offset);
        text_offset += piece.size();
    }
    return {{"tokens", toks}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

struct ChoiceRun {
    std::shared_ptr<RequestHandle> handle;
    std::string text;
    std::vector<GeneratedToken> tokens;
    bool done = false;
    FinishReason finish = FinishReason::Stop;
    RequestUsage usage;
    std::string error;
};

struct Generation {
    std::shared_ptr<Engine> engine;
    ApiKind kind;
    GenerateParams params;
    std::string id;
    int64_t created = 0;
    std::vector<ChoiceRun> choices;
    std::vector<size_t> prompt_choice;  // choice index -> prompt index
    bool role_sent = false;

    void cancel_all() {
        for (auto& c : choices)
            if (c.handle && !c.done) c.handle->cancel();
    }
    bool all_done() const {
        for (const auto& c : choices)
            if (!c.done) return false;
        return true;
    }
    json usage() const {
        int64_t prompt = 0, completion = 0, cached = 0;
        std::vector<bool> counted(choices.size(), false);
        for (size_t i = 0; i < choices.size(); ++i) {
            completion += choices[i].usage.n_generated;
            const size_t p = prompt_choice[i];
            if (!counted[p]) {
                counted[p] = true;
                prompt += choices[i].usage.n_prompt;
                cached += choices[i].usage.n_cached;
            }
        }
        return {{"prompt_tokens", prompt},
                {"completion_tokens", completion},
                {"total_tokens", prompt + completion},
                {"prompt_tokens_details", {{"cached_tokens", cached}}}};
    }
    json chunk_base() const {
        return {{"id", id},
                {"object", kind == ApiKind::Chat ? "chat.completion.chunk" : "text_completion"},
                {"created", created},
                {"model", engine->model_id},
                {"system_fingerprint", "kiln"}};
    }
    json chunk(size_t index, const std::string& text, const std::vector<GeneratedToken>* tokens,
               const char* finish, bool with_role) const {
        json c = chunk_base();
        json choice = {{"index", index}};
        const Tokenizer& tok = *engine->tokenizer;
        if (kind == ApiKind::Chat) {
            json delta = json::object();
            if (with_role) delta["role"] = "assistant";
            if (!text.empty() || with_role) delta["content"] = text;
            choice["delta"] = delta;
            choice["logprobs"] = params.logprobs && tokens && !tokens->empty() ? chat_logprobs(tok, *tokens) : json(nullptr);
        } else {
            choice["text"] = text;
            choice["logprobs"] = params.logprobs && tokens && !tokens->empty()
                                     ? completion_logprobs(tok, *tokens, choices[index].text.size())
                                     : json(nullptr);
        }
        choice["finish_reason"] = finish ? json(finish) : json(nullptr);
        c["choices"] = json::array({choice});
        return c;
    }
};

bool write_event(httplib::DataSink& sink, const json& j) {
    const std::string s = "data: " + dump_json(j) + "\n\n";
    return sink.write(s.data(), s.size());
}

// Applies one event to its choice; returns the text that is new.
void apply(ChoiceRun& c, RequestEvent& e) {
    c.text += e.text;
    c.tokens.insert(c.tokens.end(), e.tokens.begin(), e.tokens.end());
    if (e.kind == RequestEvent::Kind::Finished) {
        c.done = true;
        c.finish = e.finish;
        c.usage = e.usage;
    } else if (e.kind == RequestEvent::Kind::Error) {
        c.done = true;
        c.error = e.error;
    }
}
}  // namespace

void respond_generation(const std::shared_ptr<Engine>& engine, ApiKind kind, const GenerateParams& params,
                        const std::vector<ChoicePrompt>& prompts, httplib::Response& res) {
    auto gen = std::make_shared<Generation>();
    gen->engine = engine;
    gen->kind = kind;
    gen->params = params;
    gen->id = random_id(kind == ApiKind::Chat ? "chatcmpl-" : "cmpl-");
    gen->created = int64_t(std::time(nullptr));
    const uint64_t base_seed = params.seed_given ? params.sampling.seed : random_seed();

    // Submit every choice before answering, so a full queue or a long prompt is an HTTP error.
    try {
        for (size_t p = 0; p < prompts.size(); ++p)
            for (int k = 0; k < params.n; ++k) {
                SchedulerRequest r;
                r.prompt = prompts[p].tokens;
                r.max_tokens = params.max_tokens;
                r.sampling = params.sampling;
                r.sampling.seed = base_seed + uint64_t(k);
                r.stop = params.stop;
                r.constraint = make_json_constraint(params.response_format, *engine->tokenizer);
                ChoiceRun c;
                c.handle = engine->scheduler->submit(std::move(r));
                c.text = prompts[p].echo;
                gen->choices.push_back(std::move(c));
                gen->prompt_choice.push_back(p);
            }
    } catch (const QueueFullError& e) {
        gen->cancel_all();
        throw ApiError(503, "server_error", e.what(), std::nullopt, "server_busy");
    } catch (const ContextOverflowError& e) {
        gen->cancel_all();
        throw ApiError(400, "invalid_request_error", e.what(), kind == ApiKind::Chat ? "messages" : "prompt",
                       "context_length_exceeded");
    } catch (const InvalidSamplingParams& e) {
        gen->cancel_all();
        throw invalid_param(e.param(), e.what());
    } catch (const std::invalid_argument& e) {
        gen->cancel_all();
        throw invalid_request(e.what());
    }

    if (!params.stream) {
        for (auto& c : gen->choices)
            while (!c.done)
                if (auto e = c.handle->next(1000ms)) apply(c, *e);
        for (auto& c : gen->choices)
            if (!c.error.empty()) throw ApiError(500, "server_error", c.error);
        json out = {{"id", gen->id},
                    {"object", kind == ApiKind::Chat ? "chat.completion" : "text_completion"},
                    {"created", gen->created},
                    {"model", engine->model_id},
                    {"system_fingerprint", "kiln"}};
        json choices = json::array();
        for (size_t i = 0; i < gen->choices.size(); ++i) {
            const ChoiceRun& c = gen->choices[i];
            json choice = {{"index", i}, {"finish_reason", finish_name(c.finish)}};
            if (kind == ApiKind::Chat) {
                choice["message"] = {{"role", "assistant"}, {"content", c.text}};
                choice["logprobs"] = params.logprobs ? chat_logprobs(*engine->tokenizer, c.tokens) : json(nullptr);
            } else {
                choice["text"] = c.text;
                choice["logprobs"] = params.logprobs
                                         ? completion_logprobs(*engine->tokenizer, c.tokens, prompts[gen->prompt_choice[i]].echo.size())
                                         : json(nullptr);
            }
            choices.push_back(choice);
        }
        out["choices"] = choices;
        out["usage"] = gen->usage();
        res.set_content(dump_json(out), "application/json");
        return;
    }

    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [gen](size_t, httplib::DataSink& sink) {
            // First chunks: the role (chat) or the echoed prompt (completions).
            for (size_t i = 0; i < gen->choices.size(); ++i) {
                const bool chat = gen->kind == ApiKind::Chat;
                if (!chat && gen->choices[i].text.empty()) continue;
                if (!write_event(sink, gen->chunk(i, chat ? "" : gen->choices[i].text, nullptr, nullptr, chat))) {
                    gen->cancel_all();
                    return false;
                }
            }
            auto last_write = std::chrono::steady_clock::now();
            while (!gen->all_done()) {
                bool any = false;
                for (size_t i = 0; i < gen->choices.size(); ++i) {
                    ChoiceRun& c = gen->choices[i];
                    if (c.done) continue;
                    auto e = c.handle->next(gen->choices.size() == 1 ? 100ms : 5ms);
                    if (!e) continue;
                    any = true;
                    const size_t before = c.text.size();
                    apply(c, *e);
                    if (!c.error.empty()) {
                        write_event(sink, error_body(500, "server_error", c.error));
                        gen->cancel_all();
                        sink.done();
                        return true;
                    }
                    const std::string delta = c.text.substr(before);
                    bool ok = true;
                    if (!delta.empty() || (!e->tokens.empty() && gen->params.logprobs))
                        ok = write_event(sink, gen->chunk(i, delta, &e->tokens, nullptr, false));
                    if (ok && c.done) ok = write_event(sink, gen->chunk(i, "", nullptr, finish_name(c.finish), false));
                    if (!ok) {  // the client went away: free its slots now
                        gen->cancel_all();
                        return false;
                    }
                    last_write = std::chrono::steady_clock::now();
                }
                // A comment now and then: writing is how a vanished client is noticed.
                if (!any && std::chrono::steady_clock::now() - last_write > 200ms) {
                    if (!sink.write(": keep-alive\n\n", 14)) {
                        gen->cancel_all();
                        return false;
                    }
                    last_write = std::chrono::steady_clock::now();
                }
            }
            if (gen->params.include_usage) {
                json u = gen->chunk_base();
                u["choices"] = json::array();
                u["usage"] = gen->usage();
                if (!write_event(sink, u)) return false;
            }
            static const char done[] = "data: [DONE]\n\n";
            if (!sink.write(done, sizeof done - 1)) return false;
            sink.done();
            return true;
        },
        [gen](bool) { gen->cancel_all(); });
}

}  // namespace kiln::server
