#include "server/server.h"

#include <httplib.h>

#include <cstdio>
#include <sstream>

#include "engine/utf8.h"
#include "server/api_error.h"
#include "server/generate.h"
#include "server/json_constraint.h"
#include "server/openai_request.h"

namespace kiln::server {

namespace {
using nlohmann::json;

void send_error(httplib::Response& res, const ApiError& e) {
    res.status = e.status();
    res.set_content(dump_json(e.body()), "application/json");
}

bool is_loopback(const std::string& host) {
    return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}
}  // namespace

struct Server::Metrics {
    std::atomic<uint64_t> http_requests{0}, http_errors{0}, rejected_busy{0};
};

Server::Server(ServerOptions options)
    : options_(std::move(options)), http_(std::make_unique<httplib::Server>()), metrics_(std::make_unique<Metrics>()) {
    if (!options_.api_key.empty() || is_loopback(options_.host)) return;
    throw std::invalid_argument("--host " + options_.host +
                                " exposes the server beyond this machine: also pass --api-key KEY so that only clients "
                                "with the key can use it");
}

Server::~Server() { stop(); }

std::shared_ptr<Engine> Server::engine() const {
    std::lock_guard lock(engine_mu_);
    if (!engine_) throw ApiError(503, "server_error", "the model is still loading; retry in a moment", std::nullopt, "model_loading");
    return engine_;
}

void Server::set_engine(std::shared_ptr<Engine> engine) {
    std::lock_guard lock(engine_mu_);
    engine_ = std::move(engine);
}

void Server::bind() {
    const int threads = options_.http_threads > 0 ? options_.http_threads : 64;
    http_->new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
    http_->set_payload_max_length(options_.max_body_bytes);
    http_->set_read_timeout(30, 0);
    http_->set_write_timeout(30, 0);
    http_->set_keep_alive_timeout(5);
    install_routes();
    if (options_.port == 0) {
        port_ = http_->bind_to_any_port(options_.host);
        if (port_ < 0) port_ = 0;
    } else {
        port_ = http_->bind_to_port(options_.host, options_.port) ? options_.port : 0;
    }
    if (port_ <= 0)
        throw std::runtime_error("cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                                 " (address in use or not available); choose another --port or --host");
    listener_ = std::thread([this] { http_->listen_after_bind(); });
}

void Server::run() {
    if (listener_.joinable()) listener_.join();
}

void Server::stop() {
    if (stopped_.exchange(true)) return;
    http_->stop();
    if (listener_.joinable() && listener_.get_id() != std::this_thread::get_id()) listener_.join();
}

void Server::install_routes() {
    httplib::Server& s = *http_;

    // Before the body is read: authentication, CORS preflight, bodies we refuse to read.
    s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
        metrics_->http_requests++;
        if (!options_.cors_origin.empty()) {
            res.set_header("Access-Control-Allow-Origin", options_.cors_origin);
            res.set_header("Vary", "Origin");
            if (req.method == "OPTIONS") {
                res.status = 204;
                res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
                res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
                res.set_header("Access-Control-Max-Age", "600");
                return httplib::Server::HandlerResponse::Handled;
            }
        }
        if (!options_.api_key.empty() && req.path != "/health") {
            const std::string auth = req.get_header_value("Authorization");
            if (auth != "Bearer " + options_.api_key) {
                send_error(res, ApiError(401, "invalid_request_error",
                                         auth.empty() ? "missing API key: send the header 'Authorization: Bearer KEY'"
                                                      : "invalid API key",
                                         std::nullopt, "invalid_api_key"));
                res.set_header("WWW-Authenticate", "Bearer");
                return httplib::Server::HandlerResponse::Handled;
            }
        }
        // A chunked body has no length to check up front: refuse it rather than buffer it.
        if (req.method == "POST" && req.get_header_value("Transfer-Encoding").find("chunked") != std::string::npos) {
            send_error(res, ApiError(411, "invalid_request_error",
                                     "chunked request bodies are not accepted; send a Content-Length", std::nullopt,
                                     "length_required"));
            res.set_header("Connection", "close");
            return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
    });

    // Statuses httplib sets itself (404, 413 for a body over the limit, 400 for bad HTTP).
    s.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        if (res.status == 413)
            send_error(res, ApiError(413, "invalid_request_error",
                                     "the request body is larger than the limit of " + std::to_string(options_.max_body_bytes) +
                                         " bytes",
                                     std::nullopt, "request_too_large"));
        else if (res.status == 404)
            send_error(res, ApiError(404, "invalid_request_error", "no route " + req.method + " " + req.path, std::nullopt,
                                     "unknown_url"));
        else
            send_error(res, ApiError(res.status, "invalid_request_error", "bad HTTP request"));
        return httplib::Server::HandlerResponse::Handled;
    }));

    s.set_post_routing_handler([this](const httplib::Request&, httplib::Response& res) {
        if (res.status >= 400) metrics_->http_errors++;
    });

    // Every route runs inside this: ApiError and anything unexpected become OpenAI errors.
    auto wrap = [this](void (Server::*h)(const httplib::Request&, httplib::Response&)) {
        return [this, h](const httplib::Request& req, httplib::Response& res) {
            try {
                (this->*h)(req, res);
            } catch (const ApiError& e) {
                if (e.status() == 503) {
                    metrics_->rejected_busy++;
                    res.set_header("Retry-After", std::to_string(options_.retry_after_seconds));
                }
                send_error(res, e);
            } catch (const std::exception& e) {
                send_error(res, ApiError(500, "server_error", std::string("internal error: ") + e.what()));
            }
        };
    };

    s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
        std::lock_guard lock(engine_mu_);
        if (!engine_) {
            res.status = 503;
            res.set_content(R"({"status":"loading"})", "application/json");
        } else {
            res.set_content(R"({"status":"ok"})", "application/json");
        }
    });
    s.Get("/metrics", wrap(&Server::handle_metrics));
    s.Get("/v1/models", wrap(&Server::handle_models));
    s.Get(R"(/v1/models/(.+))", wrap(&Server::handle_models));
    s.Post("/v1/chat/completions", wrap(&Server::handle_chat));
    s.Post("/v1/completions", wrap(&Server::handle_completions));
    s.Post("/v1/embeddings", wrap(&Server::handle_embeddings));
    s.Post("/tokenize", wrap(&Server::handle_tokenize));
    s.Post("/detokenize", wrap(&Server::handle_detokenize));
}

namespace {
void check_model(const Engine& e, const GenerateParams& p) {
    if (p.model && !p.model->empty() && *p.model != e.model_id && *p.model != e.model_id + ".gguf")
        throw ApiError(404, "invalid_request_error",
                       "the model '" + *p.model + "' does not exist; this server serves '" + e.model_id + "' (see GET /v1/models)",
                       "model", "model_not_found");
}

// Template markup is parsed as special tokens; BOS is added when the vocabulary
// wants one and the template did not already write it.
std::vector<int32_t> tokenize_prompt(const Tokenizer& tok, const std::string& text, bool parse_special) {
    std::vector<int32_t> ids = tok.encode(text, false, parse_special);
    if (tok.add_bos() && tok.bos() && (ids.empty() || ids[0] != *tok.bos())) ids.insert(ids.begin(), *tok.bos());
    return ids;
}
}  // namespace

void Server::handle_chat(const httplib::Request& req, httplib::Response& res) {
    auto e = engine();
    const json body = parse_body(req.body);
    GenerateParams p = parse_generate_params(body, e->sampling_defaults, int32_t(e->model->n_vocab()), true);
    check_model(*e, p);
    const std::vector<ParsedMessage> messages = parse_messages(body);
    if (p.response_format.kind == ResponseFormat::Kind::JsonSchema) check_json_schema(p.response_format.schema);
    if (!e->chat_template)
        throw ApiError(400, "invalid_request_error",
                       "this model has no chat template (the GGUF file has no tokenizer.chat_template), so chat messages "
                       "cannot be turned into a prompt; restart kiln serve with --chat-template FILE, or use /v1/completions",
                       "messages", "chat_template_missing");
    nlohmann::ordered_json msgs = nlohmann::ordered_json::array();
    for (const auto& m : messages) msgs.push_back(m.raw);
    ChatTemplateContext ctx;
    const Tokenizer& tok = *e->tokenizer;
    if (tok.bos()) ctx.bos_token = tok.token_text(*tok.bos());
    if (tok.eos()) ctx.eos_token = tok.token_text(*tok.eos());
    std::string prompt;
    try {
        prompt = e->chat_template->render(msgs, true, ctx);
    } catch (const ChatTemplateError& err) {
        throw ApiError(400, "invalid_request_error",
                       std::string("the chat template (") + e->chat_template_origin + ") rejected these messages: " + err.what(),
                       "messages", "chat_template_error");
    }
    ChoicePrompt cp;
    cp.tokens = tokenize_prompt(tok, prompt, true);
    respond_generation(e, ApiKind::Chat, p, {cp}, res);
}

void Server::handle_completions(const httplib::Request& req, httplib::Response& res) {
    auto e = engine();
    const json body = parse_body(req.body);
    GenerateParams p = parse_generate_params(body, e->sampling_defaults, int32_t(e->model->n_vocab()), false);
    check_model(*e, p);
    if (p.response_format.kind == ResponseFormat::Kind::JsonSchema) check_json_schema(p.response_format.schema);
    auto it = body.find("prompt");
    if (it == body.end() || it->is_null()) throw invalid_param("prompt", "prompt is required", "missing_required_parameter");
    bool echo = false;
    if (auto ev = body.find("echo"); ev != body.end() && !ev->is_null()) {
        if (!ev->is_boolean()) throw invalid_param("echo", "echo must be a boolean", "invalid_type");
        echo = ev->get<bool>();
    }
    if (auto sv = body.find("suffix"); sv != body.end() && !sv->is_null())
        throw invalid_param("suffix", "suffix (fill-in-the-middle) is not supported by kiln", "unsupported_parameter");
    const Tokenizer& tok = *e->tokenizer;
    std::vector<ChoicePrompt> prompts;
    for (const PromptInput& in : parse_prompts(*it, "prompt", int32_t(e->model->n_vocab()))) {
        ChoicePrompt cp;
        if (in.text) {
            if (in.text->empty()) throw invalid_param("prompt", "prompt must not be empty");
            cp.tokens = tokenize_prompt(tok, *in.text, false);
            if (echo) cp.echo = *in.text;
        } else {
            cp.tokens = in.tokens;
            if (echo) cp.echo = tok.decode(in.tokens);
        }
        prompts.push_back(std::move(cp));
    }
    respond_generation(e, ApiKind::Completion, p, prompts, res);
}

void Server::handle_embeddings(const httplib::Request& req, httplib::Response& res) {
    auto e = engine();
    const json body = parse_body(req.body);
    if (auto m = body.find("model"); m != body.end() && !m->is_null()) {
        if (!m->is_string()) throw invalid_param("model", "model must be a string", "invalid_type");
        GenerateParams p;
        p.model = m->get<std::string>();
        check_model(*e, p);
    }
    auto it = body.find("input");
    if (it == body.end() || it->is_null()) throw invalid_param("input", "input is required", "missing_required_parameter");
    if (auto f = body.find("encoding_format"); f != body.end() && !f->is_null() && *f != "float")
        throw invalid_param("encoding_format", "encoding_format must be \"float\"");
    const Tokenizer& tok = *e->tokenizer;
    std::vector<std::shared_ptr<RequestHandle>> handles;
    try {
        for (const PromptInput& in : parse_prompts(*it, "input", int32_t(e->model->n_vocab()))) {
            SchedulerRequest r;
            r.embedding = true;
            r.prompt = in.text ? tokenize_prompt(tok, *in.text, false) : in.tokens;
            if (in.text && in.text->empty()) throw invalid_param("input", "input must not be empty");
            handles.push_back(e->scheduler->submit(std::move(r)));
        }
    } catch (...) {
        for (auto& h : handles) h->cancel();
        try {
            throw;
        } catch (const QueueFullError& err) {
            throw ApiError(503, "server_error", err.what(), std::nullopt, "server_busy");
        } catch (const ContextOverflowError& err) {
            throw ApiError(400, "invalid_request_error", err.what(), "input", "context_length_exceeded");
        }
    }
    json data = json::array();
    int64_t n_tokens = 0;
    for (size_t i = 0; i < handles.size(); ++i) {
        std::optional<RequestEvent> ev;
        while (!(ev = handles[i]->next(std::chrono::milliseconds(1000)))) {
        }
        if (ev->kind == RequestEvent::Kind::Error) throw ApiError(500, "server_error", ev->error);
        n_tokens += ev->usage.n_prompt;
        data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", ev->embedding}});
    }
    json out = {{"object", "list"},
                {"data", data},
                {"model", e->model_id},
                {"usage", {{"prompt_tokens", n_tokens}, {"total_tokens", n_tokens}}}};
    res.set_content(dump_json(out), "application/json");
}

void Server::handle_tokenize(const httplib::Request& req, httplib::Response& res) {
    auto e = engine();
    const json body = parse_body(req.body);
    auto it = body.find("content");
    if (it == body.end() || !it->is_string())
        throw invalid_param("content", "content must be a string", it == body.end() ? "missing_required_parameter" : "invalid_type");
    bool add_special = false, parse_special = true, with_pieces = false;
    auto flag = [&](const char* name, bool& out) {
        if (auto f = body.find(name); f != body.end() && !f->is_null()) {
            if (!f->is_boolean()) throw invalid_param(name, std::string(name) + " must be a boolean", "invalid_type");
            out = f->get<bool>();
        }
    };
    flag("add_special", add_special);
    flag("parse_special", parse_special);
    flag("with_pieces", with_pieces);
    const Tokenizer& tok = *e->tokenizer;
    const std::vector<int32_t> ids = tok.encode(it->get<std::string>(), add_special, parse_special);
    json tokens = json::array();
    for (int32_t id : ids) {
        if (with_pieces) tokens.push_back({{"id", id}, {"piece", tok.token_to_piece(id, true)}});
        else tokens.push_back(id);
    }
    res.set_content(dump_json({{"tokens", tokens}}), "application/json");
}

void Server::handle_detokenize(const httplib::Request& req, httplib::Response& res) {
    auto e = engine();
    const json body = parse_body(req.body);
    auto it = body.find("tokens");
    if (it == body.end() || !it->is_array())
        throw invalid_param("tokens", "tokens must be an array of token ids", it == body.end() ? "missing_required_parameter" : "invalid_type");
    const int32_t n_vocab = int32_t(e->model->n_vocab());
    std::vector<int32_t> ids;
    for (const auto& t : *it) {
        if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= n_vocab)
            throw invalid_param("tokens", "tokens must be token ids in [0, " + std::to_string(n_vocab) + "), got " + t.dump());
        ids.push_back(int32_t(t.get<int64_t>()));
    }
    // Byte tokens may leave partial characters: the answer is always valid UTF-8.
    Utf8Buffer utf8;
    std::string text = utf8.feed(e->tokenizer->decode(ids));
    text += utf8.flush();
    res.set_content(dump_json({{"content", text}}), "application/json");
}

void Server::handle_models(const httplib::Request& req, httplib::Response& res) {
    auto e = engine();
    const json model = {{"id", e->model_id}, {"object", "model"}, {"created", e->created}, {"owned_by", "kiln"}};
    if (req.matches.size() > 1) {
        const std::string id = req.matches[1];
        if (id != e->model_id)
            throw ApiError(404, "invalid_request_error", "the model '" + id + "' does not exist; this server serves '" + e->model_id + "'",
                           "model", "model_not_found");
        res.set_content(dump_json(model), "application/json");
        return;
    }
    res.set_content(dump_json({{"object", "list"}, {"data", json::array({model})}}), "application/json");
}

void Server::handle_metrics(const httplib::Request&, httplib::Response& res) {
    std::ostringstream o;
    auto metric = [&](const char* name, const char* type, const char* help, double value) {
        o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n" << name << " " << value << "\n";
    };
    metric("kiln_http_requests_total", "counter", "HTTP requests received", double(metrics_->http_requests.load()));
    metric("kiln_http_errors_total", "counter", "HTTP responses with status >= 400", double(metrics_->http_errors.load()));
    metric("kiln_requests_rejected_busy_total", "counter", "requests answered 503 because the queue was full",
           double(metrics_->rejected_busy.load()));
    std::shared_ptr<Engine> e;
    {
        std::lock_guard lock(engine_mu_);
        e = engine_;
    }
    if (e) {
        const SchedulerStats s = e->scheduler->stats();
        metric("kiln_requests_finished_total", "counter", "generation requests that finished", double(s.requests_finished));
        metric("kiln_requests_cancelled_total", "counter", "requests cancelled (client gone)", double(s.requests_cancelled));
        metric("kiln_requests_failed_total", "counter", "requests that failed in inference", double(s.requests_failed));
        metric("kiln_prompt_tokens_total", "counter", "prompt tokens evaluated (cache hits excluded)", double(s.tokens_prompt));
        metric("kiln_prompt_tokens_cached_total", "counter", "prompt tokens reused from a slot's cache", double(s.tokens_cached));
        metric("kiln_generated_tokens_total", "counter", "tokens generated", double(s.tokens_generated));
        metric("kiln_generated_tokens_per_second", "gauge", "tokens generated per second of inference time",
               s.busy_seconds > 0 ? double(s.tokens_generated) / s.busy_seconds : 0.0);
        metric("kiln_queue_depth", "gauge", "requests waiting for a slot", double(s.queue_depth));
        metric("kiln_slots_busy", "gauge", "slots running a request", double(s.slots_busy));
        metric("kiln_slots_total", "gauge", "slots (--parallel)", double(e->scheduler->options().n_parallel));
        metric("kiln_kv_cache_cells_used", "gauge", "KV cache cells holding a token", double(s.kv_cells_used));
        metric("kiln_kv_cache_cells_total", "gauge", "KV cache cells", double(s.kv_cells_total));
        metric("kiln_kv_cache_usage_ratio", "gauge", "fraction of KV cache cells in use",
               s.kv_cells_total ? double(s.kv_cells_used) / double(s.kv_cells_total) : 0.0);
    }
    res.set_content(o.str(), "text/plain; version=0.0.4");
}

}  // namespace kiln::server
