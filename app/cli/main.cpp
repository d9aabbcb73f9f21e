// `uce`: command-line shell over uce_core / uce_model. Errors: exit 1 (2 for usage) and one
// line on stderr starting with "error:".
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "command.h"
#include "uce/core/error.h"
#include "uce/core/process.h"

namespace uce::cli {

std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}

std::vector<std::string> splitList(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

Options::Options(const Args& args, const std::vector<std::string>& flags,
                 const std::vector<std::string>& valued) {
  auto contains = [](const std::vector<std::string>& v, const std::string& s) {
    for (const auto& x : v)
      if (x == s) return true;
    return false;
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) == 0 && a.size() > 2) {
      std::string key = a.substr(2), value;
      size_t eq = key.find('=');
      if (eq != std::string::npos) {
        value = key.substr(eq + 1);
        key = key.substr(0, eq);
      } else if (contains(valued, key)) {
        if (i + 1 >= args.size())
          throw Error(ErrorKind::InvalidArgument, "", "option --" + key + " needs a value");
        value = args[++i];
      } else if (key == "help" && !contains(flags, key)) {
        // A command without its own usage text: list the options it takes.
        std::string text = "options:";
        for (const auto& v : valued) text += " --" + v + " VALUE";
        for (const auto& f : flags) text += " --" + f;
        std::printf("%s\n(see README.md for what they do)\n", text.c_str());
        std::exit(0);
      } else if (!contains(flags, key)) {
        throw Error(ErrorKind::InvalidArgument, "", "unknown option --" + key);
      }
      if (eq != std::string::npos && !contains(valued, key) && !contains(flags, key))
        throw Error(ErrorKind::InvalidArgument, "", "unknown option --" + key);
      values_.emplace_back(key, value);
    } else {
      positional_.push_back(a);
    }
  }
}

bool Options::has(const std::string& key) const {
  for (const auto& kv : values_)
    if (kv.first == key) return true;
  return false;
}

std::string Options::get(const std::string& key, const std::string& def) const {
  for (auto it = values_.rbegin(); it != values_.rend(); ++it)
    if (it->first == key) return it->second;
  return def;
}

std::string Options::require(const std::string& key) const {
  if (!has(key)) throw Error(ErrorKind::InvalidArgument, "", "missing required option --" + key);
  return get(key);
}

long long Options::getInt(const std::string& key, long long def) const {
  if (!has(key)) return def;
  std::string v = get(key);
  char* end = nullptr;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0')
    throw Error(ErrorKind::InvalidArgument, "", "--" + key + " expects an integer, got '" + v + "'");
  return x;
}

std::vector<long long> Options::getIntList(const std::string& key, size_t count, long long lo, long long hi,
                                           const std::vector<long long>& def) const {
  if (!has(key)) return def;
  const std::string v = get(key);
  const std::string want = "--" + key + " expects " + std::to_string(count) + " comma-separated integers between " +
                           std::to_string(lo) + " and " + std::to_string(hi) + ", got '" + v + "'";
  std::vector<long long> out;
  for (const auto& item : splitList(v)) {
    char* end = nullptr;
    const long long x = std::strtoll(item.c_str(), &end, 10);
    if (*end != '\0' || x < lo || x > hi) throw Error(ErrorKind::InvalidArgument, "", want);
    out.push_back(x);
  }
  if (out.size() != count) throw Error(ErrorKind::InvalidArgument, "", want);
  return out;
}

double Options::getDouble(const std::string& key, double def) const {
  if (!has(key)) return def;
  std::string v = get(key);
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0')
    throw Error(ErrorKind::InvalidArgument, "", "--" + key + " expects a number, got '" + v + "'");
  return x;
}

// Errors are one line on stderr: multi-line texts (e.g. a usage summary) are joined.
static std::string oneLine(std::string s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == '\n' || c == '\r' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

static void usage(std::FILE* to) {
  std::fprintf(to, "usage: uce <command> [options]\n       uce --version [--verbose]\n\ncommands:\n");
  for (const auto& c : registry()) std::fprintf(to, "  %-10s %s\n", c.name, c.summary);
}

}  // namespace uce::cli

int main(int argc, char** argv) {
  uce::preferPassiveOpenMpWait(argv);
#if defined(__GLIBC__)
  // LibTorch allocates and frees tensors of many MB every step. glibc serves those with
  // mmap/munmap by default, so every step paid page faults and zeroing again (a profile of CPU
  // training showed ~10 % of the time there); keeping them in the heap let the same training
  // run 1.7x faster on 2 cores. Freed memory is reused, so the footprint stays the peak.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
#endif
  using namespace uce::cli;
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "--version" || cmd == "version") {
    std::printf("uce %s\n", UCE_VERSION);
    if (argc > 2 && std::strcmp(argv[2], "--verbose") == 0) {  // how this process runs
      const char* policy = std::getenv("OMP_WAIT_POLICY");
      std::printf("OpenMP wait policy: %s\n", policy ? policy : "(library default)");
    }
    return 0;
  }
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    usage(stdout);
    return 0;
  }
  Args args(argv + 2, argv + argc);
  for (const auto& c : registry()) {
    if (cmd != c.name) continue;
    try {
      return c.run(args);
    } catch (const uce::Error& e) {
      std::fprintf(stderr, "error: %s\n", oneLine(e.what()).c_str());
      return e.kind() == uce::ErrorKind::InvalidArgument ? 2 : 1;
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "error: out of memory\n");
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: %s\n", oneLine(e.what()).c_str());
      return 1;
    }
  }
  std::fprintf(stderr, "error: unknown command '%s' (see uce --help)\n", cmd.c_str());
  return 2;
}
