// Byte-level BPE (tokenizer.ggml.model = "gpt2"): pre-tokenize with the regexes of
// tokenizer.ggml.pre, map each word's bytes through GPT-2's byte->unicode table, then
// merge adjacent symbols by rank (lowest first, leftmost on ties) until no merge applies.
#include <queue>
#include <unordered_map>

#include "engine/tokenizer_model.h"
#include "engine/tokenizer_regex.h"
#include "engine/unicode.h"

namespace kiln {

namespace {

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

class BpeModel final : public TokenizerModel {
public:
    BpeModel(const TokenizerVocab& vocab, const std::vector<std::string>& merges, BpePreConfig config,
             const std::string& where)
        : vocab_(vocab), splitter_(config.regexes), ignore_merges_(config.ignore_merges) {
        const auto& byte_chars = unicode::byte_to_bpe_char();
        for (int b = 0; b < 256; ++b) byte_token_[b] = vocab.find(byte_chars[b]);
        merges_.reserve(merges.size());
        for (size_t rank = 0; rank < merges.size(); ++rank) {
            const std::string& m = merges[rank];
            // "left right"; a left part may itself start with a space in some vocabularies.
            const size_t sp = m.find(' ', 1);
            if (sp == std::string::npos) continue;
            const int32_t l = vocab.find(std::string_view(m).substr(0, sp));
            const int32_t r = vocab.find(std::string_view(m).substr(sp + 1));
            if (l < 0 || r < 0) continue;
            const int32_t merged = vocab.find(m.substr(0, sp) + m.substr(sp + 1));
            if (merged < 0) continue;  // Hugging Face rejects such a merge; it can never apply
            merges_.emplace(pair_key(l, r), Merge{int32_t(rank), merged});  // first rank wins
        }
        if (merges_.empty() && !merges.empty())
            throw TokenizerError(where + ": none of the " + std::to_string(merges.size()) +
                                 " entries of tokenizer.ggml.merges names tokens of the vocabulary");
    }

    void encode_text(std::string_view text, bool, std::vector<int32_t>& out) const override {
        std::string mapped;
        std::vector<Symbol> symbols;
        for (std::string_view word : splitter_.split(text)) {
            if (ignore_merges_) {
                mapped.clear();
                for (unsigned char c : word) mapped += unicode::byte_to_bpe_char()[c];
                if (const int32_t id = vocab_.find(mapped); id >= 0) {
                    out.push_back(id);
                    continue;
                }
            }
            merge_word(word, symbols, out);
        }
    }

    std::string piece_bytes(int32_t id) const override {
        const std::string& t = vocab_.text[size_t(id)];
        std::string r;
        for (size_t i = 0; i < t.size();) {
            size_t n = unicode::utf8_seq_len(t, i);
            if (n == 0) {  // not text: pass the byte through
                r += t[i++];
                continue;
            }
            const int b = unicode::bpe_cpt_to_byte(unicode::utf8_decode(t, i, n));
            if (b >= 0)
                r += char(b);
            else
                r.append(t, i, n);  // outside GPT-2's map (an added token's raw text): as is
            i += n;
        }
        return r;
    }

private:
    struct Merge {
        int32_t rank;
        int32_t merged;
    };
    struct Symbol {
        int32_t id;  // -1: a byte the vocabulary has no token for
        int32_t prev, next;
    };
    struct Candidate {
        int32_t rank, left, right, left_id, right_id;
        bool operator<(const Candidate& o) const {  // priority_queue pops the greatest
            return rank != o.rank ? rank > o.rank : left > o.left;
        }
    };

    void merge_word(std::string_view word, std::vector<Symbol>& sym, std::vector<int32_t>& out) const {
        const int32_t n = int32_t(word.size());
        sym.resize(size_t(n));
        for (int32_t i = 0; i < n; ++i) sym[size_t(i)] = {byte_token_[uint8_t(word[size_t(i)])], i - 1, i + 1 < n ? i + 1 : -1};

        std::priority_queue<Candidate> queue;
        const auto consider = [&](int32_t l, int32_t r) {
            if (l < 0 || r < 0) return;
            const int32_t a = sym[size_t(l)].id, b = sym[size_t(r)].id;
            if (a < 0 || b < 0) return;
            const auto it = merges_.find(pair_key(a, b));
            if (it != merges_.end()) queue.push({it->second.rank, l, r, a, b});
        };
        for (int32_t i = 0; i + 1 < n; ++i) consider(i, i + 1);

        while (!queue.empty()) {
            const Candidate c = queue.top();
            queue.pop();
            Symbol& L = sym[size_t(c.left)];
            // Stale when either side was merged since: it is no longer adjacent or no longer the same token.
            if (L.next != c.right || L.id != c.left_id || sym[size_t(c.right)].id != c.right_id) continue;
            Symbol& R = sym[size_t(c.right)];
            L.id = merges_.at(pair_key(c.left_id, c.right_id)).merged;
            L.next = R.next;
            if (R.next >= 0) sym[size_t(R.next)].prev = c.left;
            R.id = -2;  // dead
            consider(L.prev, c.left);
            consider(c.left, L.next);
        }
        for (int32_t i = 0; i >= 0 && i < n; i = sym[size_t(i)].next)
            if (sym[size_t(i)].id >= 0) out.push_back(sym[size_t(i)].id);
    }

    const TokenizerVocab& vocab_;
    RegexSplitter splitter_;
    bool ignore_merges_;
    int32_t byte_token_[256];
    std::unordered_map<uint64_t, Merge> merges_;
};

}  // namespace

std::unique_ptr<TokenizerModel> make_bpe_model(const TokenizerVocab& vocab, const std::vector<std::string>& merges,
                                               BpePreConfig config, const std::string& where) {
    return std::make_unique<BpeModel>(vocab, merges, std::move(config), where);
}

}  // namespace kiln
