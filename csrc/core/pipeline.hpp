// The batch pipeline: worker threads read, decode, fit (crop/pad) and resize each image
// straight into its slot of a pooled batch buffer. Output order depends only on the order
// asked for, never on the number of threads; at most `prefetch` batches are prepared ahead.
#pragma once

#include <cstddef>
#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/crop.hpp"
#include "core/file_index.hpp"
#include "core/image.hpp"
#include "core/resize.hpp"

namespace pyimgdir {

// Pad: tf.image.resize_with_pad (resize into the aspect-preserving box, zeros around it).
// PadResize: keras.ops.image.resize(pad_to_aspect_ratio=True) (zeros added first, half the
// difference on each side, then the padded image is resized), as Keras' grain path does.
enum class Fit { Stretch, Crop, Pad, PadResize };
// Whose decoding conventions: TensorFlow's decode_image (format="tf") or Pillow's
// (Keras' format="grain"): see DecodeOptions::accurate_dct and DecodeOptions::pillow.
enum class Decoder { TensorFlow, Pillow };
enum class OutputType { Float32, UInt8 };

struct LoaderConfig {
    int height = 256;
    int width = 256;
    int channels = 3;
    Interpolation interpolation = Interpolation::Bilinear;
    Fit fit = Fit::Stretch;
    bool channels_first = false;
    OutputType output = OutputType::Float32;
    int num_threads = 0;  // 0: one per core
    int prefetch = 2;     // batches prepared ahead of the consumer
    int64_t max_pixels = int64_t(1) << 28;
    bool lock_memory = false;  // page-lock batch buffers (mlock)
    bool skip_errors = false;  // drop failing files from their batch instead of failing it
    bool jpeg_downscale = false;  // opt-in DCT-domain 1/2, 1/4, 1/8 while still >= target
    Decoder decoder = Decoder::TensorFlow;
    // Training input (crop.hpp): a random-resized crop replaces `fit`; flips apply to any
    // output. Both are drawn from (augment_seed, epoch, file index) alone.
    bool random_crop = false;
    std::array<double, 2> crop_scale{0.08, 1.0};
    std::array<double, 2> crop_ratio{3.0 / 4.0, 4.0 / 3.0};
    Flip random_flip = Flip::None;
    uint64_t augment_seed = 0;

    AugmentParams augment() const {
        AugmentParams p;
        p.random_crop = random_crop;
        p.scale_min = crop_scale[0];
        p.scale_max = crop_scale[1];
        p.ratio_min = crop_ratio[0];
        p.ratio_max = crop_ratio[1];
        p.flip = random_flip;
        p.seed = augment_seed;
        return p;
    }

    size_t sample_bytes() const {
        return static_cast<size_t>(height) * width * channels *
               (output == OutputType::Float32 ? sizeof(float) : sizeof(uint8_t));
    }
};

// A batch-sized block of memory from the pool. It returns to the pool when the last
// reference goes away, so a batch someone still holds is never reused.
class BufferPool;
struct Buffer {
    uint8_t* data = nullptr;
    size_t bytes = 0;
    int locked = 0;  // 0: pageable, 1: mlock()ed, 2: registered with CUDA
    std::weak_ptr<BufferPool> pool;
    ~Buffer();
};

class BufferPool : public std::enable_shared_from_this<BufferPool> {
  public:
    BufferPool(size_t bytes, bool lock_memory, size_t keep) : bytes_(bytes), lock_(lock_memory), keep_(keep) {}
    ~BufferPool();
    std::shared_ptr<Buffer> acquire();
    void give_back(uint8_t* data, int locked);
    size_t bytes() const { return bytes_; }
    int64_t allocations() const { return allocations_; }
    int64_t lock_failures() const { return lock_failures_; }

  private:
    size_t bytes_;
    bool lock_;
    size_t keep_;
    struct Free {
        uint8_t* data;
        int locked;
    };
    std::vector<Free> free_;
    int64_t allocations_ = 0;
    int64_t lock_failures_ = 0;
    std::mutex mu_;
};

// "cuda" when pin_memory registers buffers with a CUDA runtime found at run time, else "mlock".
const char* pinning_backend();

// Failure of one file, with its position in the epoch order.
struct ImageFailure {
    int64_t position = -1;
    int64_t file_index = -1;
    std::string path;
    std::string reason;
};

struct Batch {
    std::shared_ptr<Buffer> buffer;
    int64_t first_position = 0;  // index into the epoch order of the first sample
    int count = 0;               // samples in the buffer (after dropping failures)
    // With skip_errors: the files dropped from this batch, by position. The samples that
    // remain keep their relative order and are packed at the front of the buffer.
    std::vector<ImageFailure> failures;
};

class Loader;

class EpochIterator {
  public:
    ~EpochIterator();
    enum class Status { Ready, End, Timeout };
    // Waits up to `timeout_ms` (forever if negative) for the next batch; the caller should
    // not hold any interpreter lock. Throws BatchFailure for a file that failed; the
    // batches before it were delivered intact.
    Status next(Batch& out, int timeout_ms = -1);
    // Stops the workers; pending batches are dropped. Safe to call twice.
    void close();
    int64_t num_batches() const;

    // Fed mode (Loader::iterate with fed=true): the encoded bytes of each position come
    // from the caller instead of the file. `owner` is an opaque handle that keeps `data`
    // alive; the iterator never touches it and hands it back through take_released() once
    // the bytes are no longer read (after the decode, or at close). Returns false, keeping
    // nothing, when the iterator is already closed. A position can be fed once.
    bool feed(int64_t position, const uint8_t* data, size_t size, void* owner);
    // The bytes of `position` could not be fetched: it fails like an unreadable file.
    bool feed_failure(int64_t position, std::string reason);
    // Owners whose bytes are no longer needed, with their positions, since the last call.
    std::vector<std::pair<int64_t, void*>> take_released();

    struct State;

  private:
    friend class Loader;
    explicit EpochIterator(std::unique_ptr<State> s);
    std::unique_ptr<State> s_;
};

struct BatchFailure : std::runtime_error {
    ImageFailure failure;
    explicit BatchFailure(ImageFailure f)
        : std::runtime_error(f.path + ": " + f.reason), failure(std::move(f)) {}
};

class Loader {
  public:
    // File i of the loader is files.path(i); the list (and its index) is shared, not copied.
    Loader(FileList files, LoaderConfig cfg);
    size_t size() const { return files_.size(); }
    const LoaderConfig& config() const { return cfg_; }
    std::string path(size_t i) const { return files_.path(i); }
    const FileList& files() const { return files_; }

    // `order` holds file indices (32-bit: a file list holds at most 2^32 - 1 files);
    // batches are consecutive runs of `batch_size` of them.
    // `epoch` keys the random crops and flips (ignored without them). With `fed`, workers
    // decode bytes handed over by EpochIterator::feed instead of reading the files (remote
    // sources); the lowest fed position within the prefetch window is decoded first.
    std::unique_ptr<EpochIterator> iterate(std::vector<uint32_t> order, int batch_size, int64_t epoch = 0,
                                           bool fed = false) const;

    // Decodes and resizes one file into `out` (sample_bytes() long), on the calling thread.
    void load_one(size_t index, uint8_t* out, int64_t epoch = 0) const;

  private:
    FileList files_;
    LoaderConfig cfg_;
    mutable std::shared_ptr<BufferPool> pool_;
};

// Decodes every file fully (no resize) on `num_threads` threads and reports the ones that
// fail. Progress can be polled from another thread; `cancel` stops it early.
class FileChecker {
  public:
    FileChecker(std::vector<std::string> paths, int channels, int64_t max_pixels, int num_threads,
                Decoder decoder = Decoder::TensorFlow);
    ~FileChecker();
    // Waits up to timeout_ms; returns true when every file has been checked.
    bool wait(int timeout_ms);
    void cancel();
    int64_t done() const;
    int64_t total() const;
    std::vector<ImageFailure> failures();  // sorted by file index; call after wait() is true

    struct State;

  private:
    std::unique_ptr<State> s_;
};

// Decode + fit + resize of one encoded image into one output sample; exposed for tests
// and for the single-image path. `scratch` is reused between calls on one thread.
struct Scratch {
    std::vector<uint8_t> file;
    Image image;
    Image padded;  // Fit::PadResize only
    std::vector<float> floats;
};
// Which sample this is, for the random crop and flip: (epoch, file index).
struct SampleKey {
    int64_t epoch = 0;
    int64_t file_index = 0;
};
void process_image(const uint8_t* data, size_t size, const LoaderConfig& cfg, Scratch& scratch,
                   uint8_t* out, SampleKey key = {});

// The random-resized-crop path of process_image (crop.cpp): the box is drawn from the
// header's size and only it is decoded, then resized and flipped; returns the augmentation.
Augment process_random_crop(const uint8_t* data, size_t size, const LoaderConfig& cfg, Scratch& scratch,
                            uint8_t* out, SampleKey key);

// Mirrors one output sample in place as `a` says.
void flip_sample(const LoaderConfig& cfg, const Augment& a, uint8_t* out);

// Writes a float32 HWC image of `plane` pixels as channels-first planes: float32, or rounded
// to uint8 (round_to_u8) when `output` is UInt8. Shared by the resize and crop paths.
void write_planes(const float* hwc, size_t plane, int channels, OutputType output, uint8_t* out);

// The augmentation each of `files` (indices into the loader's paths) gets in `epoch`, with
// the image's size, read from the files' headers (crop.cpp). Throws DecodeError naming the file.
struct FileAugment {
    Augment augment;
    int height = 0, width = 0;
};
std::vector<FileAugment> file_augments(const Loader& loader, const std::vector<int64_t>& files, int64_t epoch);

}  // namespace pyimgdir
