// The program the test guest runs: it fills several times the guest's RAM
// with pages of known contents, so that the kernel must swap most of them
// out, then reads them back in random order over several passes, rewriting
// some as it goes, and counts every page that is not what it last wrote.
// Built static, it runs as the guest's only program (tests/vm/init).
//
//   page_churn MIB PASSES SEED
//
// A page's contents follow from its index and its version (how many times
// it was written), in one of three kinds, as a guest's memory holds them:
// zero pages, text-like pages and random-looking pages. Prints one line per
// pass and, last, "page_churn: pages=N checked=C wrong=W".

#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

constexpr size_t kPageSize = 4096;

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Page `index` as written for the `version`th time.
void Fill(uint8_t* page, uint64_t index, uint32_t version, uint64_t seed) {
  const uint64_t stamp = Mix(seed ^ (index << 20) ^ version);
  switch (stamp % 3) {
    case 0:  // zero: what most of a guest's free memory is
      std::memset(page, 0, kPageSize);
      break;
    case 1: {  // text-like: words that repeat, as logs and heaps hold
      static const char* const kWords[] = {"page ", "swap ",   "zpaged ",
                                           "tier ", "memory ", "guest "};
      size_t at = 0;
      uint64_t state = stamp;
      while (at < kPageSize) {
        state = Mix(state);
        const char* word = kWords[state % 6];
        for (const char* c = word; *c != '\0' && at < kPageSize; ++c) {
          page[at++] = static_cast<uint8_t>(*c);
        }
      }
      std::memcpy(page, &index, sizeof(index));
      std::memcpy(page + sizeof(index), &version, sizeof(version));
      break;
    }
    default: {  // random-looking: compressed or encrypted data
      uint64_t state = stamp;
      for (size_t at = 0; at < kPageSize; at += sizeof(state)) {
        state = Mix(state);
        std::memcpy(page + at, &state, sizeof(state));
      }
      break;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: page_churn MIB PASSES SEED\n");
    return 2;
  }
  const uint64_t pages = std::strtoull(argv[1], nullptr, 10) * 256;
  const int passes = std::atoi(argv[2]);
  const uint64_t seed = std::strtoull(argv[3], nullptr, 10);
  void* memory = mmap(nullptr, pages * kPageSize, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) {
    std::perror("page_churn: mmap");
    return 1;
  }
  uint8_t* const base = static_cast<uint8_t*>(memory);
  std::vector<uint32_t> version(pages, 0);
  for (uint64_t i = 0; i < pages; ++i) Fill(base + i * kPageSize, i, 0, seed);
  std::printf("page_churn: wrote %llu pages (%llu MiB)\n",
              static_cast<unsigned long long>(pages),
              static_cast<unsigned long long>(pages / 256));
  std::fflush(stdout);

  std::vector<uint64_t> order(pages);
  for (uint64_t i = 0; i < pages; ++i) order[i] = i;
  uint8_t expected[kPageSize];
  uint64_t checked = 0, wrong = 0, state = seed;
  for (int pass = 1; pass <= passes; ++pass) {
    for (uint64_t i = pages - 1; i > 0; --i) {  // a new random order
      state = Mix(state);
      std::swap(order[i], order[state % (i + 1)]);
    }
    uint64_t pass_wrong = 0, rewritten = 0;
    for (uint64_t i : order) {
      uint8_t* page = base + i * kPageSize;
      Fill(expected, i, version[i], seed);
      ++checked;
      if (std::memcmp(page, expected, kPageSize) != 0) {
        if (pass_wrong < 5) {
          std::printf("page_churn: page %llu version %u is wrong\n",
                      static_cast<unsigned long long>(i), version[i]);
        }
        ++pass_wrong;
      }
      state = Mix(state);
      if (state % 8 == 0) {  // an eighth written again: old copies go stale
        Fill(page, i, ++version[i], seed);
        ++rewritten;
      }
    }
    wrong += pass_wrong;
    std::printf("page_churn: pass %d of %d: %llu wrong, %llu rewritten\n", pass,
                passes, static_cast<unsigned long long>(pass_wrong),
                static_cast<unsigned long long>(rewritten));
    std::fflush(stdout);
  }
  std::printf("page_churn: pages=%llu checked=%llu wrong=%llu\n",
              static_cast<unsigned long long>(pages),
              static_cast<unsigned long long>(checked),
              static_cast<unsigned long long>(wrong));
  return wrong == 0 ? 0 : 1;
}
