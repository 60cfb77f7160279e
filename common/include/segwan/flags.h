#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace segwan {

// A small command-line parser shared by every SegWAN binary.
//
// Flags are declared with a name, a default and a help line, then parsed from
// `--name value`, `--name=value` or (for booleans) `--name` / `--no-name`. The same
// names can come from a config file of `name = value` lines (`#` starts a comment);
// the command line wins over the file. `--help` and `--version` are built in.
// Anything that is not a flag is a positional argument, in order.
class FlagSet {
 public:
  FlagSet(std::string program, std::string summary);

  void AddString(const std::string& name, std::string default_value, std::string help);
  void AddInt(const std::string& name, int64_t default_value, std::string help);
  void AddBool(const std::string& name, bool default_value, std::string help);

  // Parses argv (argv[0] is skipped). Returns an error message naming the flag, or
  // nothing on success. Sets HelpRequested()/VersionRequested() instead of exiting.
  std::optional<std::string> Parse(int argc, const char* const* argv);
  std::optional<std::string> Parse(const std::vector<std::string>& args);

  // Reads `name = value` lines; values already given on the command line are kept.
  std::optional<std::string> ParseConfigFile(const std::string& path);

  const std::string& Program() const { return program_; }
  bool Has(const std::string& name) const { return flags_.count(name) > 0; }
  bool HelpRequested() const { return help_; }
  bool VersionRequested() const { return version_; }
  std::string Usage() const;

  std::string GetString(const std::string& name) const;
  int64_t GetInt(const std::string& name) const;
  bool GetBool(const std::string& name) const;
  bool IsSet(const std::string& name) const;  // given on the command line or in a file
  const std::vector<std::string>& Positional() const { return positional_; }

 private:
  enum class Kind { kString, kInt, kBool };
  struct Flag {
    Kind kind;
    std::string value;
    std::string default_value;
    std::string help;
    bool from_cli = false;
    bool from_file = false;
  };
  std::optional<std::string> Set(Flag& flag, const std::string& name, const std::string& value);
  const Flag& Find(const std::string& name, Kind kind) const;

  std::string program_;
  std::string summary_;
  std::map<std::string, Flag> flags_;
  std::vector<std::string> order_;
  std::vector<std::string> positional_;
  bool help_ = false;
  bool version_ = false;
};

}  // namespace segwan
