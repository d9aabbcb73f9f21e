#pragma once
// The `uce` CLI: one file per subcommand, each registering itself in the table below.
#include <functional>
#include <string>
#include <vector>

namespace uce::cli {

using Args = std::vector<std::string>;

struct Command {
  const char* name;
  const char* summary;
  std::function<int(const Args&)> run;  // returns the exit code; throws uce::Error on failure
};

std::vector<Command>& registry();

struct Registrar {
  Registrar(Command c) { registry().push_back(std::move(c)); }
};

// Minimal option parser: --key value, --flag; positional arguments kept in order.
// "a,b,,c" -> {"a", "b", "c"}: a comma-separated option value, empty items dropped.
std::vector<std::string> splitList(const std::string& s);

class Options {
 public:
  // flags: option names that take no value (e.g. "json").
  Options(const Args& args, const std::vector<std::string>& flags,
          const std::vector<std::string>& valued);
  bool has(const std::string& key) const;
  std::string get(const std::string& key, const std::string& def = "") const;
  std::string require(const std::string& key) const;
  long long getInt(const std::string& key, long long def) const;
  double getDouble(const std::string& key, double def) const;
  // --key A,B,C as exactly `count` integers in [lo, hi]; `def` when the option is absent.
  std::vector<long long> getIntList(const std::string& key, size_t count, long long lo, long long hi,
                                    const std::vector<long long>& def) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::vector<std::pair<std::string, std::string>> values_;
  std::vector<std::string> positional_;
};

}  // namespace uce::cli
