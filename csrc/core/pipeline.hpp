// The batch pipeline: worker threads read, decode, fit (crop/pad) and resize each image
// straight into its slot of a pooled batch buffer. Output order depends only on the order
// asked for, never on the number of threads; at most `prefetch` batches are prepared ahead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

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
    Loader(std::vector<std::string> paths, LoaderConfig cfg);
    size_t size() const { return paths_->size(); }
    const LoaderConfig& config() const { return cfg_; }
    const std::string& path(size_t i) const { return (*paths_)[i]; }

    // `order` holds file indices; batches are consecutive runs of `batch_size` of them.
    std::unique_ptr<EpochIterator> iterate(std::vector<int64_t> order, int batch_size) const;

    // Decodes and resizes one file into `out` (sample_bytes() long), on the calling thread.
    void load_one(size_t index, uint8_t* out) const;

  private:
    std::shared_ptr<const std::vector<std::string>> paths_;
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
void process_image(const uint8_t* data, size_t size, const LoaderConfig& cfg, Scratch& scratch,
                   uint8_t* out);

}  // namespace pyimgdir
