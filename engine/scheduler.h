#pragma once
// Continuous batching: one inference thread runs every request through a
// fixed set of slots, one forward pass per step. Each step takes the next
// token of every decoding slot, then fills the rest of a token budget with
// prompt chunks of prefilling slots, so a long prompt never stalls the
// streams already running.
//
// A request's life is an explicit state machine, visible through slots():
//
//   Queued --(a slot frees up)--> Prefilling --(last prompt token)--> Decoding
//     |                               |                                 |
//     +--> Cancelled <----------------+--------(client gone)------------+
//                                                                       |
//                                                Finished <--(eog, stop, length)
//
// Each slot keeps the tokens its KV region holds after a request ends; a new
// request goes to the free slot sharing the longest prefix with its prompt
// and only evaluates the rest (multi-turn chats do not re-process history).
//
// Greedy answers do not depend on the batch: see scheduler_kv.h (cell order)
// and scheduler.cpp (minimum batch rows).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/context.h"
#include "engine/generation.h"
#include "engine/sampler.h"
#include "engine/scheduler_kv.h"
#include "engine/tokenizer.h"

namespace kiln {

// The queue of waiting requests is full: the server answers 503 + Retry-After.
class QueueFullError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Restricts which tokens may come next (e.g. JSON output). Called on the
// inference thread only.
class TokenConstraint {
public:
    virtual ~TokenConstraint() = default;
    // Sets the logits of tokens that may not come next to -inf.
    virtual void mask(std::span<float> logits) = 0;
    virtual void accept(int32_t token) = 0;
    // The output is complete: generation ends with finish reason "stop".
    virtual bool done() const = 0;
};

enum class RequestState { Queued, Prefilling, Decoding, Finished, Cancelled };
const char* request_state_name(RequestState s);

struct SchedulerRequest {
    std::vector<int32_t> prompt;       // must not be empty
    int32_t max_tokens = -1;           // < 0: until end of generation or a full slot
    SamplingParams sampling;
    std::vector<std::string> stop;
    std::shared_ptr<TokenConstraint> constraint;  // optional
    // Embedding request: no generation; the result is the mean of the final
    // (normed) hidden states over the prompt, L2-normalised.
    bool embedding = false;
};

struct GeneratedToken {
    int32_t id = -1;
    std::optional<TokenLogprob> chosen;   // when logprobs were asked for
    std::vector<TokenLogprob> top;
};

struct RequestUsage {
    int64_t n_prompt = 0;
    int64_t n_cached = 0;        // prompt tokens taken from the slot's cache
    int64_t n_generated = 0;
    double queue_seconds = 0;
    double prompt_seconds = 0;   // from leaving the queue to the first token
    double generation_seconds = 0;
};

struct RequestEvent {
    enum class Kind { Text, Finished, Error } kind = Kind::Text;
    std::string text;                     // Text: complete UTF-8 characters
    std::vector<GeneratedToken> tokens;   // tokens decided since the previous event
    FinishReason finish = FinishReason::Stop;
    std::string error;
    RequestUsage usage;                   // Finished
    std::vector<float> embedding;         // Finished, for embedding requests
};

// The HTTP side's end of one request: events arrive in order; cancel() (a
// client that went away) frees the slot at the next step.
class RequestHandle {
public:
    // Waits up to `timeout` for the next event; nullopt on timeout.
    std::optional<RequestEvent> next(std::chrono::milliseconds timeout);
    void cancel() { cancelled_ = true; }
    bool cancelled() const { return cancelled_; }
    RequestState state() const { return state_; }

private:
    friend class Scheduler;
    void push(RequestEvent e);
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<RequestEvent> events_;
    std::atomic<bool> cancelled_{false};
    std::atomic<RequestState> state_{RequestState::Queued};
};

struct SchedulerOptions {
    int n_parallel = 4;          // slots
    int64_t n_ctx_slot = 2048;   // tokens each slot holds (prompt + generated)
    int64_t n_batch = 512;       // token budget of one forward pass
    size_t max_queue = 64;       // waiting requests before submit() throws QueueFullError
    GgmlType kv_type = GgmlType::F16;
};

struct SlotInfo {
    int id = 0;
    std::optional<RequestState> state;  // none: idle
    int64_t n_cached = 0;               // tokens in its KV region
};

struct SchedulerStats {
    uint64_t requests_finished = 0, requests_cancelled = 0, requests_failed = 0;
    uint64_t tokens_prompt = 0;      // prompt tokens evaluated (cache hits excluded)
    uint64_t tokens_cached = 0;      // prompt tokens taken from a slot's cache
    uint64_t tokens_generated = 0;
    uint64_t steps = 0;
    double busy_seconds = 0;         // time spent in steps
    size_t queue_depth = 0;
    int slots_busy = 0;
    int64_t kv_cells_used = 0, kv_cells_total = 0;
};

class Scheduler {
public:
    Scheduler(std::shared_ptr<const Model> model, const Tokenizer& tokenizer, const SchedulerOptions& options);
    ~Scheduler();  // cancels everything and joins the inference thread
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // Throws ContextOverflowError when the prompt does not fit a slot,
    // QueueFullError when the queue is full, InvalidSamplingParams,
    // InvalidStopStrings or std::invalid_argument for a bad request.
    std::shared_ptr<RequestHandle> submit(SchedulerRequest request);

    std::vector<SlotInfo> slots() const;
    SchedulerStats stats() const;
    const SchedulerOptions& options() const { return options_; }
    const Tokenizer& tokenizer() const { return tokenizer_; }
    const Model& model() const { return *model_; }

private:
    struct Job;
    struct Slot;

    void loop();
    void admit();                 // queue -> free slots
    void start(Slot& slot, std::shared_ptr<Job> job);
    bool step();                  // one forward pass; false when there was nothing to do
    void finish(Slot& slot, RequestState state, FinishReason reason);
    void fail(Slot& slot, const std::string& message);
    void emit_token(Slot& slot, std::span<const float> logits);
    void run_embedding(Slot& slot);

    std::shared_ptr<const Model> model_;
    const Tokenizer& tokenizer_;
    SchedulerOptions options_;
    SlotKvCache kv_;
    std::unique_ptr<ForwardState> state_;
    std::vector<Slot> slots_;

    mutable std::mutex mu_;           // guards queue_, stats_, stop_ and slot states read by slots()
    std::condition_variable cv_;
    std::deque<std::shared_ptr<Job>> queue_;
    SchedulerStats stats_;
    bool stop_ = false;
    uint64_t clock_ = 0;              // for least-recently-used slot choice

    // One step's batch, sized once (n_batch + n_parallel + pad rows).
    std::vector<int32_t> b_tokens_, b_pos_, b_seq_, b_cells_, b_outputs_;
    std::vector<int> b_out_slot_;     // (outputs) which slot each output row belongs to
    std::vector<float> logits_;       // (max outputs, n_vocab)
    std::vector<float> masked_;       // (n_vocab) a constrained request's logits

    std::thread thread_;
};

}  // namespace kiln
