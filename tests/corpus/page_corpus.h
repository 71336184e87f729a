// Reads a page corpus written by make_corpus.py.

#ifndef ZPAGED_TESTS_CORPUS_PAGE_CORPUS_H_
#define ZPAGED_TESTS_CORPUS_PAGE_CORPUS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace zpaged {

class PageCorpus {
 public:
  // Loads `dir`/pages.bin and `dir`/manifest.tsv. NOT_FOUND if they are
  // missing, DATA_LOSS if they disagree.
  static absl::StatusOr<PageCorpus> Load(const std::string& dir);

  // The directory the build generates the corpus in, unless the environment
  // variable ZPAGED_CORPUS names another.
  static std::string DefaultDir();

  // For benchmarks, which cannot run without it: the corpus in DefaultDir(),
  // or a message naming `program` and the reason on stderr, and exit(1).
  static PageCorpus LoadDefaultOrExit(const char* program);

  size_t size() const { return kinds_.size(); }
  absl::Span<const uint8_t> page(size_t i) const;
  const std::string& kind(size_t i) const { return kinds_[i]; }

 private:
  std::vector<uint8_t> bytes_;
  std::vector<std::string> kinds_;
};

}  // namespace zpaged

#endif  // ZPAGED_TESTS_CORPUS_PAGE_CORPUS_H_
