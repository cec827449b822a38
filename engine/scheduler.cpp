#include "engine/scheduler.h"

#include <algorithm>
#include <cmath>

#include "engine/stop.h"
#include "engine/utf8.h"

namespace kiln {

namespace {
using clock_type = std::chrono::steady_clock;

double seconds_between(clock_type::time_point a, clock_type::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

// The CPU matmul takes a different kernel for batches of one or two rows (a
// plain dot per row) than for three or more (a packed outer-product gemm
// whose per-row arithmetic does not depend on the other rows). The two round
// differently, so a request would get different greedy answers alone and in a
// batch. Every forward pass therefore has at least this many rows, and at
// least this many output rows, padded with filler rows when needed.
constexpr int64_t kMinRows = 3;
}  // namespace

const char* request_state_name(RequestState s) {
    switch (s) {
        case RequestState::Queued: return "queued";
        case RequestState::Prefilling: return "prefilling";
        case RequestState::Decoding: return "decoding";
        case RequestState::Finished: return "finished";
        case RequestState::Cancelled: return "cancelled";
    }
    return "queued";
}

// ---- RequestHandle ------------------------------------------------------------

std::optional<RequestEvent> RequestHandle::next(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return std::nullopt;
    RequestEvent e = std::move(events_.front());
    events_.pop_front();
    return e;
}

void RequestHandle::push(RequestEvent e) {
    {
        std::lock_guard lock(mu_);
        events_.push_back(std::move(e));
    }
    cv_.notify_all();
}

// ---- jobs and slots -------------------------------------------------------------

struct Scheduler::Job {
    SchedulerRequest request;
    std::shared_ptr<RequestHandle> handle;
    clock_type::time_point submitted;
};

struct Scheduler::Slot {
    int id = 0;
    std::shared_ptr<Job> job;            // null: idle
    RequestState state = RequestState::Finished;
    std::vector<int32_t> cached;         // tokens in this slot's KV region, position order
    size_t n_prompt_done = 0;            // prompt tokens whose K/V are in the cache
    int32_t pending = -1;                // sampled, not yet fed back
    uint64_t last_used = 0;

    std::unique_ptr<Sampler> sampler;
    std::unique_ptr<StopMatcher> stop;
    Utf8Buffer utf8;
    std::vector<GeneratedToken> unsent;  // tokens not yet reported in an event
    RequestUsage usage;
    clock_type::time_point started, first_token;
};

Scheduler::Scheduler(std::shared_ptr<const Model> model, const Tokenizer& tokenizer, const SchedulerOptions& options)
    : model_(std::move(model)),
      tokenizer_(tokenizer),
      options_(options),
      kv_((require_host_kv_fits(*model_, options.n_ctx_slot, options.n_parallel, options.kv_type), model_->hparams().n_layer),
          model_->hparams().n_kv_dim(), options.n_parallel, options.n_ctx_slot, options.kv_type) {
    if (options_.n_batch < 1) throw std::invalid_argument("batch size must be positive");
    // Every decoding slot gets its token each step, whatever the budget.
    const int64_t rows = std::max<int64_t>(options_.n_batch, options_.n_parallel) + kMinRows;
    state_ = model_->transformer().new_state(rows);
    b_tokens_.resize(size_t(rows));
    b_pos_.resize(size_t(rows));
    b_seq_.resize(size_t(rows));
    b_cells_.resize(size_t(rows));
    b_outputs_.resize(size_t(rows));
    b_out_slot_.resize(size_t(rows));
    const int64_t n_out = std::max<int64_t>(options_.n_parallel, kMinRows);
    logits_.resize(size_t(n_out * model_->n_vocab()));
    masked_.resize(size_t(model_->n_vocab()));
    slots_.resize(size_t(options_.n_parallel));
    for (int i = 0; i < options_.n_parallel; ++i) slots_[size_t(i)].id = i;
    stats_.kv_cells_total = int64_t(options_.n_parallel) * options_.n_ctx_slot;
    thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    for (auto& j : queue_) {
        RequestEvent e;
        e.kind = RequestEvent::Kind::Error;
        e.error = "the server is shutting down";
        j->handle->push(std::move(e));
    }
}

std::shared_ptr<RequestHandle> Scheduler::submit(SchedulerRequest request) {
    if (request.prompt.empty()) throw std::invalid_argument("the prompt is empty");
    const int32_t n_vocab = int32_t(model_->n_vocab());
    for (int32_t t : request.prompt)
        if (t < 0 || t >= n_vocab)
            throw std::invalid_argument("token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                                        std::to_string(n_vocab) + ")");
    if (int64_t(request.prompt.size()) > options_.n_ctx_slot)
        throw ContextOverflowError("the prompt is " + std::to_string(request.prompt.size()) +
                                   " tokens but the context of each slot is " + std::to_string(options_.n_ctx_slot) +
                                   " tokens; shorten the prompt or restart the server with a larger -c");
    if (!request.embedding) {
        validate(request.sampling, n_vocab);
        StopMatcher check(request.stop);  // throws InvalidStopStrings
    }
    auto job = std::make_shared<Job>();
    job->request = std::move(request);
    job->handle = std::make_shared<RequestHandle>();
    job->submitted = clock_type::now();
    {
        std::lock_guard lock(mu_);
        if (queue_.size() >= options_.max_queue)
            throw QueueFullError("the server is busy: all " + std::to_string(options_.n_parallel) + " slots are in use and " +
                                 std::to_string(queue_.size()) + " requests are waiting; retry shortly");
        queue_.push_back(job);
        stats_.queue_depth = queue_.size();
    }
    cv_.notify_all();
    return job->handle;
}

std::vector<SlotInfo> Scheduler::slots() const {
    std::lock_guard lock(mu_);
    std::vector<SlotInfo> out;
    for (const Slot& s : slots_) {
        SlotInfo i;
        i.id = s.id;
        if (s.job) i.state = s.state;
        i.n_cached = int64_t(s.cached.size());
        out.push_back(i);
    }
    return out;
}

SchedulerStats Scheduler::stats() const {
    std::lock_guard lock(mu_);
    SchedulerStats s = stats_;
    s.slots_busy = 0;
    for (const Slot& slot : slots_) s.slots_busy += slot.job ? 1 : 0;  // job changes under mu_
    return s;
}

// ---- the inference thread ---------------------------------------------------------

void Scheduler::loop() {
    for (;;) {
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [&] {
                if (stop_ || !queue_.empty()) return true;
                for (const Slot& s : slots_)
                    if (s.job) return true;
                return false;
            });
            if (stop_) break;
        }
        admit();
        const auto t0 = clock_type::now();
        const bool worked = step();
        std::lock_guard lock(mu_);
        if (worked) {
            ++stats_.steps;
            stats_.busy_seconds += seconds_between(t0, clock_type::now());
        }
    }
    std::lock_guard lock(mu_);
    for (Slot& s : slots_)
        if (s.job) {
            s.job->handle->cancel();
            RequestEvent e;
            e.kind = RequestEvent::Kind::Error;
            e.error = "the server is shutting down";
            s.job->handle->push(std::move(e));
            s.job.reset();
        }
}

void Scheduler::admit() {
    std::unique_lock lock(mu_);
    // Requests whose client left while they waited never take a slot.
    for (auto it = queue_.begin(); it != queue_.end();) {
        if ((*it)->handle->cancelled()) {
            (*it)->handle->state_ = RequestState::Cancelled;
            RequestEvent e;
            e.kind = RequestEvent::Kind::Finished;
            e.finish = FinishReason::Cancelled;
            (*it)->handle->push(std::move(e));
            ++stats_.requests_cancelled;
            it = queue_.erase(it);
        } else {
            ++it;
        }
    }
    while (!queue_.empty()) {
        const std::vector<int32_t>& prompt = queue_.front()->request.prompt;
        // The free slot sharing the longest prefix; ties go to the least recently used.
        Slot* best = nullptr;
        size_t best_common = 0;
        for (Slot& s : slots_) {
            if (s.job) continue;
            size_t common = 0;
            while (common < s.cached.size() && common < prompt.size() && s.cached[common] == prompt[common]) ++common;
            if (!best || common > best_common || (common == best_common && s.last_used < best->last_used)) {
                best = &s;
                best_common = common;
            }
        }
        if (!best) break;
        std::shared_ptr<Job> job = queue_.front();
        queue_.pop_front();
        stats_.queue_depth = queue_.size();
        start(*best, std::move(job));
    }
    int busy = 0;
    for (const Slot& s : slots_) busy += s.job ? 1 : 0;
    stats_.slots_busy = busy;
}

// Called with mu_ held.
void Scheduler::start(Slot& slot, std::shared_ptr<Job> job) {
    const SchedulerRequest& r = job->request;
    size_t common = 0;
    while (common < slot.cached.size() && common < r.prompt.size() && slot.cached[common] == r.prompt[common]) ++common;
    // The last prompt token is always evaluated: its logits pick the first answer token.
    // (An embedding needs every prompt token's hidden state.)
    common = r.embedding ? 0 : std::min(common, r.prompt.size() - 1);
    kv_.truncate(slot.id, int32_t(common));
    slot.cached.resize(common);
    slot.n_prompt_done = common;
    slot.pending = -1;
    slot.last_used = ++clock_;
    slot.started = clock_type::now();
    slot.usage = RequestUsage{};
    slot.usage.n_prompt = int64_t(r.prompt.size());
    slot.usage.n_cached = int64_t(common);
    slot.usage.queue_seconds = seconds_between(job->submitted, slot.started);
    slot.unsent.clear();
    slot.utf8.reset();
    if (r.embedding) {
        slot.sampler.reset();
        slot.stop.reset();
    } else {
        slot.sampler = std::make_unique<Sampler>(r.sampling, int32_t(model_->n_vocab()));
        for (int32_t t : r.prompt) slot.sampler->accept(t);
        slot.stop = std::make_unique<StopMatcher>(r.stop);
    }
    stats_.tokens_cached += common;
    slot.state = RequestState::Prefilling;
    job->handle->state_ = RequestState::Prefilling;
    slot.job = std::move(job);
}

void Scheduler::finish(Slot& slot, RequestState state, FinishReason reason) {
    RequestEvent e;
    e.kind = RequestEvent::Kind::Finished;
    e.finish = reason;
    if (!slot.job->request.embedding && state == RequestState::Finished && !slot.stop->stopped()) {
        // End of generation without a stop string: what was held back belongs to the output.
        std::string tail = slot.stop->feed(slot.utf8.flush()).text;
        if (!slot.stop->stopped()) tail += slot.stop->flush();
        e.text = std::move(tail);
    }
    e.tokens = std::move(slot.unsent);
    slot.unsent.clear();
    const auto now = clock_type::now();
    if (slot.usage.n_generated > 0) slot.usage.generation_seconds = seconds_between(slot.first_token, now);
    else slot.usage.prompt_seconds = seconds_between(slot.started, now);
    e.usage = slot.usage;
    slot.state = state;
    slot.job->handle->state_ = state;
    slot.job->handle->push(std::move(e));
    std::lock_guard lock(mu_);
    if (state == RequestState::Cancelled) ++stats_.requests_cancelled;
    else ++stats_.requests_finished;
    slot.job.reset();
    slot.sampler.reset();
    slot.stop.reset();
}

void Scheduler::fail(Slot& slot, const std::string& message) {
    RequestEvent e;
    e.kind = RequestEvent::Kind::Error;
    e.error = message;
    slot.job->handle->state_ = RequestState::Finished;
    slot.job->handle->push(std::move(e));
    // The region's content is unknown after a failed pass: forget it.
    kv_.truncate(slot.id, 0);
    slot.cached.clear();
    std::lock_guard lock(mu_);
    ++stats_.requests_failed;
    slot.job.reset();
    slot.sampler.reset();
    slot.stop.reset();
}

bool Scheduler::step() {
    const int64_t n_vocab = model_->n_vocab();
    for (Slot& s : slots_)
        if (s.job && s.job->handle->cancelled()) finish(s, RequestState::Cancelled, FinishReason::Cancelled);

    bool embedded = false;
    for (Slot& s : slots_)
        if (s.job && s.state == RequestState::Prefilling && s.job->request.embedding) {
            run_embedding(s);
            embedded = true;
        }

    int64_t n = 0, n_out = 0;
    auto add_row = [&](int32_t token, int32_t pos, int32_t seq, int32_t cell) {
        b_tokens_[size_t(n)] = token;
        b_pos_[size_t(n)] = pos;
        b_seq_[size_t(n)] = seq;
        b_cells_[size_t(n)] = cell;
        ++n;
    };
    std::vector<Slot*> in_batch;  // slots with rows this step (at most n_parallel: no allocation after warm-up)
    in_batch.reserve(slots_.size());
    // Decode tokens first: one per decoding slot, always.
    for (Slot& s : slots_) {
        if (!s.job || s.state != RequestState::Decoding) continue;
        const int32_t pos = int32_t(s.cached.size());
        add_row(s.pending, pos, s.id, kv_.occupy(s.id, pos));
        s.cached.push_back(s.pending);
        s.pending = -1;
        b_outputs_[size_t(n_out)] = int32_t(n - 1);
        b_out_slot_[size_t(n_out++)] = s.id;
        in_batch.push_back(&s);
    }
    // Then prompt chunks, oldest request first, within the budget.
    std::vector<Slot*> prefilling;
    prefilling.reserve(slots_.size());
    for (Slot& s : slots_)
        if (s.job && s.state == RequestState::Prefilling) prefilling.push_back(&s);
    std::sort(prefilling.begin(), prefilling.end(), [](Slot* a, Slot* b) { return a->last_used < b->last_used; });
    for (Slot* s : prefilling) {
        if (!s->job || s->job->request.embedding) continue;
        const int64_t budget = options_.n_batch - n;
        if (budget <= 0) break;
        const auto& prompt = s->job->request.prompt;
        const int64_t chunk = std::min<int64_t>(budget, int64_t(prompt.size() - s->n_prompt_done));
        for (int64_t i = 0; i < chunk; ++i) {
            const int32_t pos = int32_t(s->n_prompt_done);
            const int32_t t = prompt[s->n_prompt_done++];
            add_row(t, pos, s->id, kv_.occupy(s->id, pos));
            s->cached.push_back(t);
        }
        in_batch.push_back(s);
        if (s->n_prompt_done == prompt.size()) {
            b_outputs_[size_t(n_out)] = int32_t(n - 1);
            b_out_slot_[size_t(n_out++)] = s->id;
        }
    }
    if (n == 0) return embedded;
    for (int32_t i = 0; n < kMinRows; ++i) add_row(tokenizer_.bos().value_or(0), i, kv_.pad_seq(), kv_.occupy_pad(i));
    const int64_t n_real_out = n_out;
    if (n_out > 0)
        while (n_out < kMinRows) {
            b_outputs_[size_t(n_out)] = b_outputs_[0];
            b_out_slot_[size_t(n_out++)] = -1;
        }

    const Batch batch{std::span<const int32_t>(b_tokens_).first(size_t(n)), std::span<const int32_t>(b_pos_).first(size_t(n)),
                      std::span<const int32_t>(b_seq_).first(size_t(n)), std::span<const int32_t>(b_cells_).first(size_t(n)),
                      std::span<const int32_t>(b_outputs_).first(size_t(n_out))};
    try {
        model_->transformer().forward(*state_, batch, kv_.view(), logits_.data());
    } catch (const std::exception& e) {
        kv_.clear_pad();
        for (Slot* s : in_batch) fail(*s, std::string("inference failed: ") + e.what());
        return true;
    }
    kv_.clear_pad();
    {
        std::lock_guard lock(mu_);
        int64_t n_decode = 0, n_filler = 0;
        for (Slot* s : in_batch) n_decode += s->state == RequestState::Decoding ? 1 : 0;
        for (int64_t i = 0; i < n; ++i) n_filler += b_seq_[size_t(i)] == kv_.pad_seq() ? 1 : 0;
        stats_.tokens_prompt += uint64_t(n - n_decode - n_filler);
        stats_.kv_cells_used = kv_.n_used();
    }

    for (int64_t o = 0; o < n_real_out; ++o) {
        Slot& s = slots_[size_t(b_out_slot_[size_t(o)])];
        if (!s.job) continue;
        emit_token(s, std::span<const float>(logits_).subspan(size_t(o * n_vocab), size_t(n_vocab)));
    }
    return true;
}

void Scheduler::emit_token(Slot& slot, std::span<const float> logits) {
    const SchedulerRequest& r = slot.job->request;
    if (slot.state == RequestState::Prefilling) {
        slot.state = RequestState::Decoding;
        slot.job->handle->state_ = RequestState::Decoding;
        slot.first_token = clock_type::now();
        slot.usage.prompt_seconds = seconds_between(slot.started, slot.first_token);
    }
    if (r.max_tokens >= 0 && slot.usage.n_generated >= r.max_tokens) {
        finish(slot, RequestState::Finished, FinishReason::Length);
        return;
    }
    std::span<const float> row = logits;
    if (r.constraint) {
        std::copy(logits.begin(), logits.end(), masked_.begin());
        r.constraint->mask(masked_);
        row = masked_;
    }
    const int32_t token = slot.sampler->sample(row);
    slot.sampler->accept(token);
    if (r.constraint) r.constraint->accept(token);
    ++slot.usage.n_generated;
    {
        std::lock_guard lock(mu_);
        ++stats_.tokens_generated;
    }
    GeneratedToken g;
    g.id = token;
    if (r.sampling.logprobs || r.sampling.top_logprobs > 0) {
        const SampledLogprobs lp = slot.sampler->last_logprobs();
        g.chosen = lp.chosen;
        g.top.assign(lp.top.begin(), lp.top.end());
    }
    slot.unsent.push_back(std::move(g));
    if (tokenizer_.is_eog(token)) {
        finish(slot, RequestState::Finished, FinishReason::Stop);
        return;
    }
    StopScan scan = slot.stop->feed(slot.utf8.feed(tokenizer_.token_to_piece(token)));
    if (scan.stopped) {
        RequestEvent e;
        e.text = std::move(scan.text);
        // finish() reports the tokens and the (empty) rest.
        if (!e.text.empty()) {
            e.tokens = std::move(slot.unsent);
            slot.unsent.clear();
            slot.job->handle->push(std::move(e));
        }
        finish(slot, RequestState::Finished, FinishReason::Stop);
        return;
    }
    if (!scan.text.empty()) {
        RequestEvent e;
        e.text = std::move(scan.text);
        e.tokens = std::move(slot.unsent);
        slot.unsent.clear();
        slot.job->handle->push(std::move(e));
    }
    if (r.constraint && r.constraint->done()) {
        finish(slot, RequestState::Finished, FinishReason::Stop);
        return;
    }
    if (r.max_tokens >= 0 && slot.usage.n_generated >= r.max_tokens) {
        finish(slot, RequestState::Finished, FinishReason::Length);
        return;
    }
    if (int64_t(slot.cached.size()) >= options_.n_ctx_slot) {  // the slot is full: "length"
        finish(slot, RequestState::Finished, FinishReason::Length);
        return;
    }
    slot.pending = token;
}

// Embeddings run as their own passes (the whole prompt, in n_batch chunks): they
// want hidden states of every row and no logits, unlike a generation batch.
void Scheduler::run_embedding(Slot& slot) {
    const std::vector<int32_t>& prompt = slot.job->request.prompt;
    const int64_t n_embd = model_->hparams().n_embd;
    const int64_t chunk_max = options_.n_batch;
    std::vector<double> sum(size_t(n_embd), 0.0);
    std::vector<float> hidden(size_t(std::min<int64_t>(chunk_max, int64_t(prompt.size())) * n_embd));
    try {
        while (slot.n_prompt_done < prompt.size()) {
            const int64_t m = std::min<int64_t>(chunk_max, int64_t(prompt.size() - slot.n_prompt_done));
            for (int64_t i = 0; i < m; ++i) {
                const int32_t pos = int32_t(slot.n_prompt_done + size_t(i));
                b_tokens_[size_t(i)] = prompt[size_t(pos)];
                b_pos_[size_t(i)] = pos;
                b_seq_[size_t(i)] = slot.id;
                b_cells_[size_t(i)] = kv_.occupy(slot.id, pos);
                b_outputs_[size_t(i)] = int32_t(i);
            }
            Batch batch{std::span<const int32_t>(b_tokens_).first(size_t(m)), std::span<const int32_t>(b_pos_).first(size_t(m)),
                        std::span<const int32_t>(b_seq_).first(size_t(m)), std::span<const int32_t>(b_cells_).first(size_t(m)),
                        std::span<const int32_t>(b_outputs_).first(size_t(m))};
            batch.hidden = hidden.data();
            model_->transformer().forward(*state_, batch, kv_.view(), nullptr);
            for (int64_t i = 0; i < m; ++i) {
                slot.cached.push_back(prompt[slot.n_prompt_done + size_t(i)]);
                for (int64_t d = 0; d < n_embd; ++d) sum[size_t(d)] += hidden[size_t(i * n_embd + d)];
            }
            slot.n_prompt_done += size_t(m);
        }
    } catch (const std::exception& e) {
        fail(slot, std::string("inference failed: ") + e.what());
        return;
    }
    // Mean over the tokens, then unit length (cosine similarity becomes a dot product).
    double norm = 0;
    for (double& v : sum) {
        v /= double(prompt.size());
        norm += v * v;
    }
    norm = std::sqrt(norm);
    std::vector<float> embedding(sum.size());
    for (size_t d = 0; d < sum.size(); ++d) embedding[d] = norm > 0 ? float(sum[d] / norm) : 0.0f;
    {
        std::lock_guard lock(mu_);
        stats_.tokens_prompt += prompt.size() - size_t(slot.usage.n_cached);
    }
    RequestEvent e;
    e.kind = RequestEvent::Kind::Finished;
    e.finish = FinishReason::Stop;
    slot.usage.prompt_seconds = seconds_between(slot.started, clock_type::now());
    e.usage = slot.usage;
    e.embedding = std::move(embedding);
    slot.state = RequestState::Finished;
    slot.job->handle->state_ = RequestState::Finished;
    slot.job->handle->push(std::move(e));
    std::lock_guard lock(mu_);
    ++stats_.requests_finished;
    slot.job.reset();
}

}  // namespace kiln
