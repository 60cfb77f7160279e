#include "segwan/flags.h"

#include <charconv>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace segwan {

FlagSet::FlagSet(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

void FlagSet::AddString(const std::string& name, std::string default_value, std::string help) {
  flags_[name] = Flag{Kind::kString, default_value, default_value, std::move(help)};
  order_.push_back(name);
}

void FlagSet::AddInt(const std::string& name, int64_t default_value, std::string help) {
  const std::string v = std::to_string(default_value);
  flags_[name] = Flag{Kind::kInt, v, v, std::move(help)};
  order_.push_back(name);
}

void FlagSet::AddBool(const std::string& name, bool default_value, std::string help) {
  const std::string v = default_value ? "true" : "false";
  flags_[name] = Flag{Kind::kBool, v, v, std::move(help)};
  order_.push_back(name);
}

std::optional<std::string> FlagSet::Set(Flag& flag, const std::string& name,
                                        const std::string& value) {
  switch (flag.kind) {
    case Kind::kString:
      flag.value = value;
      return std::nullopt;
    case Kind::kInt: {
      int64_t parsed = 0;
      const char* end = value.data() + value.size();
      auto [ptr, ec] = std::from_chars(value.data(), end, parsed);
      if (ec != std::errc() || ptr != end || value.empty()) {
        return "--" + name + ": '" + value + "' is not an integer";
      }
      flag.value = std::to_string(parsed);
      return std::nullopt;
    }
    case Kind::kBool:
      if (value == "true" || value == "1" || value == "yes") {
        flag.value = "true";
      } else if (value == "false" || value == "0" || value == "no") {
        flag.value = "false";
      } else {
        return "--" + name + ": '" + value + "' is not a boolean (true/false)";
      }
      return std::nullopt;
  }
  return std::nullopt;
}

std::optional<std::string> FlagSet::Parse(int argc, const char* const* argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return Parse(args);
}

std::optional<std::string> FlagSet::Parse(const std::vector<std::string>& args) {
  bool only_positional = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (only_positional || arg.size() < 3 || arg.rfind("--", 0) != 0) {
      if (arg == "--") {
        only_positional = true;
        continue;
      }
      if (arg == "-h") {
        help_ = true;
        continue;
      }
      positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (name == "help") {
      help_ = true;
      continue;
    }
    if (name == "version") {
      version_ = true;
      continue;
    }
    auto it = flags_.find(name);
    if (it == flags_.end() && name.rfind("no-", 0) == 0 && !value) {
      auto neg = flags_.find(name.substr(3));
      if (neg != flags_.end() && neg->second.kind == Kind::kBool) {
        neg->second.value = "false";
        neg->second.from_cli = true;
        continue;
      }
    }
    if (it == flags_.end()) return "unknown flag --" + name + " (see --help)";
    Flag& flag = it->second;
    if (!value) {
      if (flag.kind == Kind::kBool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return "--" + name + " needs a value";
      }
    }
    if (auto err = Set(flag, name, *value)) return err;
    flag.from_cli = true;
  }
  return std::nullopt;
}

static std::string Trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::optional<std::string> FlagSet::ParseConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "cannot read config file " + path;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    line = Trim(line);
    if (line.empty()) continue;
    const auto eq = line.find('=');
    const std::string where = path + ":" + std::to_string(lineno);
    if (eq == std::string::npos) return where + ": expected 'name = value'";
    const std::string name = Trim(line.substr(0, eq));
    const std::string value = Trim(line.substr(eq + 1));
    auto it = flags_.find(name);
    if (it == flags_.end()) return where + ": unknown setting '" + name + "'";
    if (it->second.from_cli) continue;
    if (auto err = Set(it->second, name, value)) return where + ": " + *err;
    it->second.from_file = true;
  }
  return std::nullopt;
}

std::string FlagSet::Usage() const {
  std::ostringstream out;
  out << "Usage: " << program_ << " [flags]\n" << summary_ << "\n\nFlags:\n";
  for (const auto& name : order_) {
    const Flag& f = flags_.at(name);
    std::string head = "  --" + name;
    if (f.kind == Kind::kString) head += " STRING";
    if (f.kind == Kind::kInt) head += " N";
    out << head;
    if (head.size() < 30) out << std::string(30 - head.size(), ' ');
    else out << "\n" << std::string(30, ' ');
    out << f.help;
    if (!f.default_value.empty() && f.default_value != "false") {
      out << " (default: " << f.default_value << ")";
    }
    out << "\n";
  }
  out << "  --help                      print this help\n";
  out << "  --version                   print the version\n";
  return out.str();
}

const FlagSet::Flag& FlagSet::Find(const std::string& name, Kind kind) const {
  auto it = flags_.find(name);
  if (it == flags_.end() || it->second.kind != kind) {
    throw std::logic_error("flag --" + name + " was not declared with this type");
  }
  return it->second;
}

std::string FlagSet::GetString(const std::string& name) const {
  return Find(name, Kind::kString).value;
}
int64_t FlagSet::GetInt(const std::string& name) const {
  return std::stoll(Find(name, Kind::kInt).value);
}
bool FlagSet::GetBool(const std::string& name) const {
  return Find(name, Kind::kBool).value == "true";
}
bool FlagSet::IsSet(const std::string& name) const {
  auto it = flags_.find(name);
  return it != flags_.end() && (it->second.from_cli || it->second.from_file);
}

}  // namespace segwan
