#define PCRE2_CODE_UNIT_WIDTH 8
#include "engine/tokenizer_regex.h"

#include <pcre2.h>

#include "engine/tokenizer.h"
#include "engine/unicode.h"

namespace kiln {

struct RegexSplitter::Compiled {
    pcre2_code* code = nullptr;
    ~Compiled() { pcre2_code_free(code); }
};

RegexSplitter::RegexSplitter(const std::vector<std::string>& patterns) {
    for (const auto& p : patterns) {
        int err = 0;
        PCRE2_SIZE err_off = 0;
        auto c = std::make_unique<Compiled>();
        c->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(), PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY,
                                &err, &err_off, nullptr);
        if (!c->code) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, sizeof msg);
            throw TokenizerError("pre-tokenizer regex does not compile at offset " + std::to_string(err_off) +
                                 ": " + reinterpret_cast<const char*>(msg) + " (pattern: " + p + ")");
        }
        // JIT is only a speed-up; without it pcre2_match interprets.
        pcre2_jit_compile(c->code, PCRE2_JIT_COMPLETE);
        compiled_.push_back(std::move(c));
    }
}

RegexSplitter::~RegexSplitter() = default;
RegexSplitter::RegexSplitter(RegexSplitter&&) noexcept = default;

namespace {
struct Piece {
    std::string_view text;
    bool opaque;  // not well-formed UTF-8: no pattern may see it
};

struct MatchData {
    pcre2_match_data* md;
    explicit MatchData(const pcre2_code* code) : md(pcre2_match_data_create_from_pattern(code, nullptr)) {
        if (!md) throw std::bad_alloc();
    }
    ~MatchData() { pcre2_match_data_free(md); }
};
}  // namespace

std::vector<std::string_view> RegexSplitter::split(std::string_view text) const {
    std::vector<Piece> pieces;
    // Well-formed runs and single bad bytes: PCRE2 in UTF mode must not see malformed input.
    size_t run = 0;
    for (size_t i = 0; i < text.size();) {
        const size_t n = unicode::utf8_seq_len(text, i);
        if (n > 0) {
            i += n;
            continue;
        }
        if (i > run) pieces.push_back({text.substr(run, i - run), false});
        pieces.push_back({text.substr(i, 1), true});
        run = ++i;
    }
    if (run < text.size()) pieces.push_back({text.substr(run), false});

    std::vector<Piece> next;
    for (const auto& c : compiled_) {
        MatchData data(c->code);
        next.clear();
        for (const Piece& p : pieces) {
            if (p.opaque) {
                next.push_back(p);
                continue;
            }
            const auto* subject = reinterpret_cast<PCRE2_SPTR>(p.text.data());
            size_t start = 0, last = 0;
            while (start < p.text.size()) {
                const int rc = pcre2_match(c->code, subject, p.text.size(), start, PCRE2_NO_UTF_CHECK, data.md, nullptr);
                if (rc == PCRE2_ERROR_NOMATCH) break;
                if (rc < 0) {
                    PCRE2_UCHAR msg[256];
                    pcre2_get_error_message(rc, msg, sizeof msg);
                    throw TokenizerError(std::string("pre-tokenizer regex failed on the input: ") +
                                         reinterpret_cast<const char*>(msg));
                }
                const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data.md);
                const size_t ms = ov[0], me = ov[1];
                if (me <= ms) {  // empty match: step over one character
                    if (ms >= p.text.size()) break;
                    start = ms + unicode::utf8_seq_len(p.text, ms);
                    continue;
                }
                if (ms > last) next.push_back({p.text.substr(last, ms - last), false});
                next.push_back({p.text.substr(ms, me - ms), false});
                last = start = me;
            }
            if (last < p.text.size()) next.push_back({p.text.substr(last), false});
        }
        pieces.swap(next);
    }

    std::vector<std::string_view> out;
    out.reserve(pieces.size());
    for (const Piece& p : pieces) out.push_back(p.text);
    return out;
}

}  // namespace kiln
