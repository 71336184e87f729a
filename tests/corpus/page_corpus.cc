#include "tests/corpus/page_corpus.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "contract/page.h"

namespace zpaged {

absl::StatusOr<PageCorpus> PageCorpus::Load(const std::string& dir) {
  std::ifstream pages(dir + "/pages.bin", std::ios::binary);
  std::ifstream manifest(dir + "/manifest.tsv");
  if (!pages || !manifest) {
    return absl::NotFoundError(
        absl::StrCat("no page corpus in ", dir,
                     " (build the 'corpus' target, or set ", "ZPAGED_CORPUS)"));
  }
  PageCorpus corpus;
  corpus.bytes_.assign(std::istreambuf_iterator<char>(pages),
                       std::istreambuf_iterator<char>());
  std::string line;
  while (std::getline(manifest, line)) {
    std::vector<std::string> fields = absl::StrSplit(line, '\t');
    if (fields.size() != 3) {
      return absl::DataLossError(absl::StrCat("bad manifest line: ", line));
    }
    corpus.kinds_.push_back(fields[1]);
  }
  if (corpus.bytes_.size() != corpus.kinds_.size() * kPageSize) {
    return absl::DataLossError(absl::StrCat(
        "pages.bin holds ", corpus.bytes_.size(),
        " bytes but the manifest lists ", corpus.kinds_.size(), " pages"));
  }
  return corpus;
}

PageCorpus PageCorpus::LoadDefaultOrExit(const char* program) {
  absl::StatusOr<PageCorpus> corpus = Load(DefaultDir());
  if (!corpus.ok()) {
    std::fprintf(stderr, "%s: %s\n", program,
                 std::string(corpus.status().message()).c_str());
    std::exit(1);
  }
  return std::move(*corpus);
}

std::string PageCorpus::DefaultDir() {
  if (const char* dir = std::getenv("ZPAGED_CORPUS")) return dir;
  return ZPAGED_DEFAULT_CORPUS_DIR;
}

absl::Span<const uint8_t> PageCorpus::page(size_t i) const {
  return absl::MakeConstSpan(bytes_.data() + i * kPageSize, kPageSize);
}

}  // namespace zpaged
