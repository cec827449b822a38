#pragma once
// Runs the real `kiln` binary through the shell and captures stdout, stderr and
// the exit code separately (stderr through a temporary file).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "test_paths.h"

namespace kiln::test {

struct ProcessResult {
    int exit_code = -1;
    std::string out, err;
};

inline std::string shell_quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

// `args` is appended to the binary's path as shell text (quote paths with shell_quote).
inline ProcessResult run_kiln_process(const std::string& args, const std::string& stdin_text = "") {
    char err_path[] = "/tmp/kiln-test-stderr-XXXXXX";
    const int fd = ::mkstemp(err_path);
    if (fd >= 0) ::close(fd);
    std::string cmd = shell_quote(kiln_binary()) + " " + args + " 2>" + shell_quote(err_path);
    if (stdin_text.empty()) cmd += " </dev/null";
    else cmd = "printf '%s' " + shell_quote(stdin_text) + " | " + cmd;
    ProcessResult r;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p) {
        char buf[4096];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
        const int status = ::pclose(p);
        r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::ifstream e(err_path, std::ios::binary);
    std::ostringstream s;
    s << e.rdbuf();
    r.err = s.str();
    ::unlink(err_path);
    return r;
}

}  // namespace kiln::test
