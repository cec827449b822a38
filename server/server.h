#pragma once
// `kiln serve`: an OpenAI-compatible HTTP face over the Scheduler.
//
//   Server server(options);
//   server.bind();                  // answers /health with 503 while loading
//   server.set_engine(engine);      // ready: every route works
//   server.run();                   // until stop()
//
// Routes: POST /v1/chat/completions, /v1/completions, /v1/embeddings,
// /tokenize, /detokenize; GET /v1/models, /health, /metrics.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "engine/chat_template.h"
#include "engine/context.h"
#include "engine/sampler.h"
#include "engine/scheduler.h"
#include "engine/tokenizer.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace kiln::server {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8080;                  // 0: any free port (see port())
    std::string api_key;              // empty: no authentication
    std::string cors_origin;          // empty: no CORS headers
    size_t max_body_bytes = 8u << 20; // larger bodies get 413 before they are read into memory
    int http_threads = 0;             // 0: enough for every slot and queued request
    int retry_after_seconds = 1;      // Retry-After of a 503 when the queue is full
};

// What a loaded model gives the routes.
struct Engine {
    std::shared_ptr<Model> model;
    std::unique_ptr<Tokenizer> tokenizer;
    std::unique_ptr<Scheduler> scheduler;
    std::optional<ChatTemplate> chat_template;  // none: /v1/chat/completions answers 400
    std::string chat_template_origin;           // for messages: "the GGUF's tokenizer.chat_template", a file
    std::string model_id;                       // what /v1/models lists and requests name
    SamplingParams sampling_defaults;           // from the command line
    int64_t created = 0;                        // unix time the model was loaded
};

class Server {
public:
    explicit Server(ServerOptions options);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds the socket and starts answering in the background. Throws
    // std::runtime_error naming host and port when it cannot bind.
    void bind();
    int port() const { return port_; }
    void set_engine(std::shared_ptr<Engine> engine);
    // Blocks until stop().
    void run();
    void stop();

private:
    struct Metrics;
    void install_routes();
    std::shared_ptr<Engine> engine() const;  // throws ApiError 503 while loading
    void handle_chat(const httplib::Request& req, httplib::Response& res);
    void handle_completions(const httplib::Request& req, httplib::Response& res);
    void handle_embeddings(const httplib::Request& req, httplib::Response& res);
    void handle_tokenize(const httplib::Request& req, httplib::Response& res);
    void handle_detokenize(const httplib::Request& req, httplib::Response& res);
    void handle_models(const httplib::Request& req, httplib::Response& res);
    void handle_metrics(const httplib::Request& req, httplib::Response& res);

    ServerOptions options_;
    std::unique_ptr<httplib::Server> http_;
    std::unique_ptr<Metrics> metrics_;
    int port_ = 0;
    mutable std::mutex engine_mu_;
    std::shared_ptr<Engine> engine_;
    std::thread listener_;
    std::atomic<bool> stopped_{false};
};

}  // namespace kiln::server
