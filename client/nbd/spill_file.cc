#include "client/nbd/spill_file.h"

#include <emmintrin.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace zpaged::nbd {
namespace {

constexpr char kMagic[8] = {'Z', 'P', 'A', 'G', 'E', 'S', 'P', 'L'};
// 2: entries and the header carry checks. 1 is opened and upgraded.
constexpr uint32_t kVersion = 2;
constexpr uint32_t kUncheckedVersion = 1;
constexpr size_t kMaxTenantBytes = 128;
constexpr uint64_t kIndexOffset = kBlockSize;

// The file's first bytes; the rest of its 4 KiB is zero.
struct SpillHeader {
  char magic[8];
  uint32_t version;
  uint32_t block_size;
  uint64_t size_bytes;
  uint32_t tenant_bytes;
  char tenant[kMaxTenantBytes];
  uint32_t check;  // of the bytes before it; version 2 on
};
static_assert(sizeof(SpillHeader) <= kBlockSize);

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint32_t HeaderCheck(const SpillHeader& header) {
  uint32_t hash = 2166136261u;  // FNV-1a
  const auto* bytes = reinterpret_cast<const unsigned char*>(&header);
  for (size_t i = 0; i < offsetof(SpillHeader, check); ++i) {
    hash = (hash ^ bytes[i]) * 16777619u;
  }
  return hash;
}

// Never 0, so that an entry of zeros (a lost write, a zeroed sector) fails.
uint16_t EntryCheck(uint64_t block, const BlockEntry& entry) {
  const uint64_t fields = static_cast<uint64_t>(entry.state) |
                          static_cast<uint64_t>(entry.put_pending) << 8 |
                          static_cast<uint64_t>(entry.generation) << 16;
  const uint16_t check =
      static_cast<uint16_t>(Mix(Mix(block ^ fields) ^ entry.word));
  return check == 0 ? 1 : check;
}

uint64_t RoundUp(uint64_t n) {
  return (n + kBlockSize - 1) / kBlockSize * kBlockSize;
}

uint64_t SlotsOffset(uint64_t blocks) {
  return kIndexOffset + RoundUp(blocks * sizeof(BlockEntry));
}

absl::Status Errno(absl::string_view what) {
  const int error = errno;
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(error)));
}

absl::Status CheckHeader(const SpillHeader& header, const std::string& path,
                         uint64_t size_bytes, absl::string_view tenant) {
  if (std::memcmp(header.magic, kMagic, sizeof(kMagic)) != 0 ||
      (header.version != kVersion && header.version != kUncheckedVersion) ||
      header.block_size != kBlockSize ||
      header.tenant_bytes > kMaxTenantBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a zpaged spill file (version ", kVersion,
                     "); give a new path or remove it"));
  }
  if (header.version == kVersion && header.check != HeaderCheck(header)) {
    return absl::DataLossError(absl::StrCat(
        path,
        "'s header is corrupt (its check fails); its blocks cannot be "
        "trusted: give a new path"));
  }
  const absl::string_view made_for(header.tenant, header.tenant_bytes);
  if (header.size_bytes != size_bytes || made_for != tenant) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " was made for tenant '", made_for, "' and size ",
        header.size_bytes, ", not tenant '", tenant, "' and size ", size_bytes,
        "; give a new path, or the size and tenant it was made for"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SpillFile>> SpillFile::Open(
    const std::string& path, uint64_t size_bytes, absl::string_view tenant) {
  if (size_bytes == 0 || size_bytes % kBlockSize != 0 ||
      size_bytes / kBlockSize > kMaxBlocks) {
    return absl::InvalidArgumentError(absl::StrCat(
        "size ", size_bytes, " is not a positive multiple of ", kBlockSize));
  }
  if (tenant.empty() || tenant.size() > kMaxTenantBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("tenant must be 1 to ", kMaxTenantBytes, " bytes"));
  }
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Errno(absl::StrCat("cannot open spill file ", path));
  // From here the SpillFile owns fd, so every return closes it.
  const uint64_t blocks = size_bytes / kBlockSize;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const absl::Status error = Errno(absl::StrCat("cannot stat ", path));
    close(fd);
    return error;
  }
  std::unique_ptr<SpillFile> file(new SpillFile(fd, blocks, st.st_size == 0));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    return errno == EWOULDBLOCK
               ? absl::FailedPreconditionError(absl::StrCat(
                     "spill file ", path,
                     " is in use by another bridge (it holds its lock)"))
               : Errno(absl::StrCat("cannot lock ", path));
  }

  SpillHeader header = {};
  if (file->created_) {
    std::memcpy(header.magic, kMagic, sizeof(kMagic));
    header.block_size = kBlockSize;
    header.size_bytes = size_bytes;
    header.tenant_bytes = static_cast<uint32_t>(tenant.size());
    std::memcpy(header.tenant, tenant.data(), tenant.size());
    if (ftruncate(fd, file->slots_offset_ + blocks * kBlockSize) != 0) {
      return Errno(absl::StrCat("cannot size ", path));
    }
  } else {
    if (pread(fd, &header, sizeof(header), 0) !=
        static_cast<ssize_t>(sizeof(header))) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " is too short to be a zpaged spill file"));
    }
    if (absl::Status ok = CheckHeader(header, path, size_bytes, tenant);
        !ok.ok()) {
      return ok;
    }
    if (static_cast<uint64_t>(st.st_size) <
        file->slots_offset_ + blocks * kBlockSize) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " is shorter than its header says"));
    }
  }
  // The index is written through a shared mapping, where a page with no
  // disk block behind it faults (SIGBUS, killing nbdkit) the first time it
  // is written on a full disk. Its blocks are allocated now, for a new file
  // and an old one alike: a disk without room for them is an error here,
  // never a signal later.
  if (fallocate(fd, 0, 0, static_cast<off_t>(file->slots_offset_)) != 0) {
    return errno == ENOSPC
               ? absl::ResourceExhaustedError(absl::StrCat(
                     "the disk of ", path, " has no room for its index (",
                     file->slots_offset_,
                     " bytes): free some, or give a "
                     "spill file on another disk"))
               : Errno(absl::StrCat("cannot allocate the index of ", path));
  }
  if (absl::Status mapped = file->MapIndex(); !mapped.ok()) return mapped;
  if (header.version != kVersion) {
    // A new file's index (zeros) becomes checked unwritten entries, and a
    // version 1 file's entries get their checks; only then does the header
    // say version 2, so a file cut short by a crash here is done again.
    for (uint64_t block = 0; block < blocks; ++block) {
      file->SetEntry(block, file->entry(block));
    }
    header.version = kVersion;
    header.check = HeaderCheck(header);
    if (absl::Status synced = file->Sync(); !synced.ok()) return synced;
    if (pwrite(fd, &header, sizeof(header), 0) !=
        static_cast<ssize_t>(sizeof(header))) {
      return Errno(absl::StrCat("cannot write the header of ", path));
    }
    if (fdatasync(fd) != 0) return Errno(absl::StrCat("cannot sync ", path));
  }
  return file;
}

bool SpillFile::Intact(uint64_t block) const {
  return index_[block].check == EntryCheck(block, index_[block]);
}

void SpillFile::SetEntry(uint64_t block, BlockEntry value) {
  value.check = EntryCheck(block, value);
  __m128i bits;
  std::memcpy(&bits, &value, sizeof(bits));
  // One instruction: a kill lands before or after it, never within.
  _mm_store_si128(reinterpret_cast<__m128i*>(&index_[block]), bits);
}

SpillFile::SpillFile(int fd, uint64_t blocks, bool created)
    : fd_(fd),
      blocks_(blocks),
      slots_offset_(SlotsOffset(blocks)),
      created_(created) {}

SpillFile::~SpillFile() {
  if (index_ != nullptr) munmap(index_, index_bytes_);
  close(fd_);
}

absl::Status SpillFile::MapIndex() {
  index_bytes_ = slots_offset_ - kIndexOffset;
  void* mapped = mmap(nullptr, index_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED,
                      fd_, kIndexOffset);
  if (mapped == MAP_FAILED) return Errno("cannot map the block index");
  index_ = static_cast<BlockEntry*>(mapped);
  return absl::OkStatus();
}

absl::Status SpillFile::ReadSlot(uint64_t block,
                                 absl::Span<uint8_t> out) const {
  const ssize_t n =
      pread(fd_, out.data(), kBlockSize, slots_offset_ + block * kBlockSize);
  if (n == kBlockSize) return absl::OkStatus();
  if (n >= 0) errno = EIO;
  return Errno(
      absl::StrCat("cannot read block ", block, " from the spill file"));
}

absl::Status SpillFile::WriteSlot(uint64_t block,
                                  absl::Span<const uint8_t> page) {
  const ssize_t n =
      pwrite(fd_, page.data(), kBlockSize, slots_offset_ + block * kBlockSize);
  if (n == kBlockSize) return absl::OkStatus();
  if (n >= 0) errno = ENOSPC;
  return Errno(
      absl::StrCat("cannot write block ", block, " to the spill file"));
}

absl::Status SpillFile::PunchSlots(uint64_t first, uint64_t count) {
  punch_calls_++;
  if (fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                static_cast<off_t>(slots_offset_ + first * kBlockSize),
                static_cast<off_t>(count * kBlockSize)) != 0) {
    return Errno(absl::StrCat("cannot free the spill slots of blocks ", first,
                              "..", first + count - 1));
  }
  return absl::OkStatus();
}

absl::Status SpillFile::Sync() {
  if (msync(index_, index_bytes_, MS_SYNC) != 0) {
    return Errno("cannot sync the block index");
  }
  if (fdatasync(fd_) != 0) return Errno("cannot sync the spill file");
  return absl::OkStatus();
}

uint64_t SpillFile::AllocatedBytes() const {
  struct stat status;
  if (fstat(fd_, &status) != 0) return 0;
  return static_cast<uint64_t>(status.st_blocks) * 512;
}

}  // namespace zpaged::nbd
