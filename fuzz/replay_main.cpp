// Runs a fuzz target over files (a corpus, crash reproducers) without libFuzzer: what `make
// test` does with the committed corpus, so every input that ever found a bug stays checked.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
// What a target checked beyond not crashing ("40 replies checked"), when it says.
extern "C" __attribute__((weak)) const char* SegwanFuzzSummary();

int main(int argc, char** argv) {
  size_t n = 0;
  for (int i = 1; i < argc; ++i) {
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(argv[i])) {
      for (const auto& e : std::filesystem::directory_iterator(argv[i]))
        if (e.is_regular_file()) files.push_back(e.path());
    } else {
      files.emplace_back(argv[i]);
    }
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "cannot read %s\n", f.c_str());
        return 2;
      }
      const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
      ++n;
    }
  }
  std::printf("%zu inputs, no invariant broken%s%s\n", n, SegwanFuzzSummary ? ": " : "",
              SegwanFuzzSummary ? SegwanFuzzSummary() : "");
  return n ? 0 : 1;
}
