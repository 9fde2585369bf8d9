#include "core/pipeline.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <new>
#include <set>
#include <thread>

#include <dlfcn.h>
#include <sys/mman.h>

#include "core/decode.hpp"

namespace pyimgdir {

// ---------------------------------------------------------------------------------------
// Buffer pool

namespace {
constexpr size_t kAlign = 64;

uint8_t* allocate_aligned(size_t bytes) {
    void* p = nullptr;
    const size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
    if (posix_memalign(&p, kAlign, rounded == 0 ? kAlign : rounded) != 0) throw std::bad_alloc();
    return static_cast<uint8_t*>(p);
}

// Page-locking. Where a CUDA runtime can be loaded, buffers are registered with it
// (cudaHostRegister) so host-to-device copies from them can be asynchronous; otherwise
// they are mlock()ed. CUDA is never a build or run dependency: it is looked up at run time.
struct CudaHost {
    using RegisterFn = int (*)(void*, size_t, unsigned int);
    using UnregisterFn = int (*)(void*);
    RegisterFn reg = nullptr;
    UnregisterFn unreg = nullptr;

    CudaHost() {
        if (const char* off = std::getenv("PYIMGDIR_NO_CUDA"); off && *off && *off != '0') return;
        for (const char* name : {"libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0"}) {
            void* h = ::dlopen(name, RTLD_LAZY | RTLD_LOCAL);
            if (!h) continue;
            reg = reinterpret_cast<RegisterFn>(::dlsym(h, "cudaHostRegister"));
            unreg = reinterpret_cast<UnregisterFn>(::dlsym(h, "cudaHostUnregister"));
            if (reg && unreg) {
                // A runtime without a usable device (no GPU, no driver) refuses; use mlock then.
                void* probe = nullptr;
                if (posix_memalign(&probe, 4096, 4096) == 0) {
                    const bool ok = reg(probe, 4096, 0) == 0;
                    if (ok) unreg(probe);
                    std::free(probe);
                    if (ok) return;
                }
            }
            reg = nullptr;
            unreg = nullptr;
        }
    }
    static CudaHost& get() {
        static CudaHost instance;
        return instance;
    }
};

// 0: not locked, 1: mlock, 2: registered with CUDA
int lock_buffer(uint8_t* data, size_t bytes) {
    CudaHost& cuda = CudaHost::get();
    if (cuda.reg && cuda.reg(data, bytes, 0) == 0) return 2;
    return ::mlock(data, bytes) == 0 ? 1 : 0;
}

void release(uint8_t* data, size_t bytes, int locked) {
    if (locked == 2) CudaHost::get().unreg(data);
    if (locked == 1) ::munlock(data, bytes);
    std::free(data);
}
}  // namespace

const char* pinning_backend() {
    return CudaHost::get().reg ? "cuda" : "mlock";
}

Buffer::~Buffer() {
    if (!data) return;
    if (auto p = pool.lock()) {
        p->give_back(data, locked);
    } else {
        release(data, bytes, locked);
    }
}

BufferPool::~BufferPool() {
    for (auto& f : free_) release(f.data, bytes_, f.locked);
}

std::shared_ptr<Buffer> BufferPool::acquire() {
    auto b = std::make_shared<Buffer>();
    b->bytes = bytes_;
    b->pool = weak_from_this();
    {
        std::lock_guard<std::mutex> lk(mu_);
        if (!free_.empty()) {
            b->data = free_.back().data;
            b->locked = free_.back().locked;
            free_.pop_back();
            return b;
        }
        ++allocations_;
    }
    b->data = allocate_aligned(bytes_);
    if (lock_) {
        b->locked = lock_buffer(b->data, bytes_);
        if (!b->locked) {
            std::lock_guard<std::mutex> lk(mu_);
            ++lock_failures_;
        }
    }
    return b;
}

void BufferPool::give_back(uint8_t* data, int locked) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        if (free_.size() < keep_) {
            free_.push_back(Free{data, locked});
            return;
        }
    }
    release(data, bytes_, locked);
}

// ---------------------------------------------------------------------------------------
// One image: decode, fit, resize into its slot

namespace {

struct Box {
    int y = 0, x = 0, h = 0, w = 0;
};

// Keras' smart_resize crop box (its tensor branch: float32 division, int32 truncation).
Box crop_box(int H, int W, int th, int tw) {
    const int32_t wth = static_cast<int32_t>(static_cast<uint32_t>(W) * static_cast<uint32_t>(th));
    const int32_t htw = static_cast<int32_t>(static_cast<uint32_t>(H) * static_cast<uint32_t>(tw));
    int ch = static_cast<int>(static_cast<float>(wth) / static_cast<float>(tw));
    ch = std::max(std::min(H, ch), 1);
    int cw = static_cast<int>(static_cast<float>(htw) / static_cast<float>(th));
    cw = std::max(std::min(W, cw), 1);
    Box b;
    b.h = ch;
    b.w = cw;
    b.y = static_cast<int>(static_cast<float>(H - ch) / 2.0f);
    b.x = static_cast<int>(static_cast<float>(W - cw) / 2.0f);
    return b;
}

// tf.image.resize_with_pad's content box (float32 throughout).
Box pad_box(int H, int W, int th, int tw) {
    const float fh = static_cast<float>(H), fw = static_cast<float>(W);
    const float ratio = std::max(fw / static_cast<float>(tw), fh / static_cast<float>(th));
    const float rhf = fh / ratio, rwf = fw / ratio;
    Box b;
    b.h = static_cast<int>(std::floor(rhf));
    b.w = static_cast<int>(std::floor(rwf));
    b.y = std::max(0, static_cast<int>(std::floor((static_cast<float>(th) - rhf) / 2.0f)));
    b.x = std::max(0, static_cast<int>(std::floor((static_cast<float>(tw) - rwf) / 2.0f)));
    return b;
}

// keras.ops.image.resize's pad_to_aspect_ratio (TensorFlow backend): the padded size,
// with float32 division and int32 truncation, and the zero rows (or columns) added on
// *each* side: half the difference, truncated, so an odd difference loses one.
struct PadAround {
    int top = 0, left = 0;
};
PadAround pad_around(int H, int W, int th, int tw) {
    const int32_t wth = static_cast<int32_t>(static_cast<uint32_t>(W) * static_cast<uint32_t>(th));
    const int32_t htw = static_cast<int32_t>(static_cast<uint32_t>(H) * static_cast<uint32_t>(tw));
    const int ph = std::max(H, static_cast<int>(static_cast<float>(wth) / static_cast<float>(tw)));
    const int pw = std::max(W, static_cast<int>(static_cast<float>(htw) / static_cast<float>(th)));
    PadAround p;
    p.top = static_cast<int>(static_cast<float>(ph - H) / 2.0f);
    p.left = static_cast<int>(static_cast<float>(pw - W) / 2.0f);
    // Keras pads the width using the unpadded height; both cannot be needed at once
    // (one needs W/H above the target ratio, the other below), barring rounding.
    if (p.top > 0) p.left = 0;
    return p;
}

struct ScaleTarget {
    int th, tw;
    Fit fit;
};

// The largest of 1/8, 1/4, 1/2 that keeps the region to be resized at least as large as
// its destination, so the resize still only shrinks (or keeps) the image.
int choose_scale(const void* ctx, int H, int W) {
    const auto* t = static_cast<const ScaleTarget*>(ctx);
    if (t->fit == Fit::PadResize) return 1;
    for (int d : {8, 4, 2}) {
        const int sh = (H + d - 1) / d, sw = (W + d - 1) / d;
        bool ok;
        if (t->fit == Fit::Pad) {
            const Box c = pad_box(H, W, t->th, t->tw);
            ok = sh >= c.h && sw >= c.w;
        } else {
            ok = sh >= t->th && sw >= t->tw;
        }
        if (ok) return d;
    }
    return 1;
}

struct RowsTarget {
    const LoaderConfig* cfg;
};

bool rows_needed(const void* ctx, int H, int W, uint8_t* mask) {
    const LoaderConfig& cfg = *static_cast<const RowsTarget*>(ctx)->cfg;
    int y0 = 0, in_h = H, out_h = cfg.height;
    if (cfg.fit == Fit::PadResize) return false;
    if (cfg.fit == Fit::Crop) {
        const Box b = crop_box(H, W, cfg.height, cfg.width);
        y0 = b.y;
        in_h = b.h;
    } else if (cfg.fit == Fit::Pad) {
        out_h = pad_box(H, W, cfg.height, cfg.width).h;
    }
    return rows_read_by_resize(cfg.interpolation, in_h, out_h, mask + y0);
}

}  // namespace

namespace {
void fill_sample(const uint8_t* data, size_t size, const LoaderConfig& cfg, Scratch& scratch, uint8_t* out);
}

void process_image(const uint8_t* data, size_t size, const LoaderConfig& cfg, Scratch& scratch,
                   uint8_t* out, SampleKey key) {
    if (cfg.random_crop) {
        process_random_crop(data, size, cfg, scratch, out, key);  // flips included
        return;
    }
    fill_sample(data, size, cfg, scratch, out);
    if (cfg.random_flip != Flip::None)
        flip_sample(cfg, draw_augment(cfg.augment(), key.epoch, key.file_index, 0, 0), out);
}

void write_planes(const float* hwc, size_t plane, int channels, OutputType output, uint8_t* out) {
    const int C = channels;
    if (output == OutputType::Float32) {
        float* o = reinterpret_cast<float*>(out);
        for (size_t p = 0; p < plane; ++p)
            for (int k = 0; k < C; ++k) o[k * plane + p] = hwc[p * C + k];
    } else {
        for (size_t p = 0; p < plane; ++p)
            for (int k = 0; k < C; ++k) out[k * plane + p] = round_to_u8(hwc[p * C + k]);
    }
}

namespace {
void fill_sample(const uint8_t* data, size_t size, const LoaderConfig& cfg, Scratch& scratch, uint8_t* out) {
    DecodeOptions dopts;
    dopts.channels = cfg.channels;
    dopts.max_pixels = cfg.max_pixels;
    const ScaleTarget target{cfg.height, cfg.width, cfg.fit};
    if (cfg.jpeg_downscale) {
        dopts.choose_jpeg_scale = choose_scale;
        dopts.scale_ctx = &target;
    }
    const RowsTarget rows_target{&cfg};
    dopts.rows_needed = rows_needed;
    dopts.rows_ctx = &rows_target;
    dopts.accurate_dct = dopts.pillow = cfg.decoder == Decoder::Pillow;
    Image* decoded = &scratch.image;
    decode_image(data, size, dopts, *decoded);
    if (cfg.fit == Fit::PadResize) {
        // Zero rows or columns around the image, then an ordinary resize of the whole.
        const Image& s = scratch.image;
        const PadAround p = pad_around(s.height, s.width, cfg.height, cfg.width);
        Image& padded = scratch.padded;
        padded.reset(s.height + 2 * p.top, s.width + 2 * p.left, s.channels);
        std::memset(padded.data(), 0, padded.pixels.size());
        const size_t row = static_cast<size_t>(s.width) * s.channels;
        const size_t prow = static_cast<size_t>(padded.width) * s.channels;
        for (int y = 0; y < s.height; ++y)
            std::memcpy(padded.data() + (y + p.top) * prow + static_cast<size_t>(p.left) * s.channels,
                        s.data() + y * row, row);
        decoded = &padded;
    }
    Image& img = *decoded;

    const int C = cfg.channels, th = cfg.height, tw = cfg.width;
    Box src{0, 0, img.height, img.width};
    Box dst{0, 0, th, tw};
    // After a DCT-scaled decode the boxes are computed on the file's own size (so the
    // output geometry is the full-size one) and the crop is mapped onto the smaller image.
    const bool scaled = img.source_height != img.height || img.source_width != img.width;
    if (cfg.fit == Fit::Crop) {
        if (!scaled) {
            src = crop_box(img.height, img.width, th, tw);
        } else {
            const Box full = crop_box(img.source_height, img.source_width, th, tw);
            const double sy = static_cast<double>(img.height) / img.source_height;
            const double sx = static_cast<double>(img.width) / img.source_width;
            src.h = std::max(1, std::min(img.height, static_cast<int>(std::lround(full.h * sy))));
            src.w = std::max(1, std::min(img.width, static_cast<int>(std::lround(full.w * sx))));
            src.y = std::min(img.height - src.h, static_cast<int>(std::lround(full.y * sy)));
            src.x = std::min(img.width - src.w, static_cast<int>(std::lround(full.x * sx)));
        }
    } else if (cfg.fit == Fit::Pad) {
        dst = pad_box(img.source_height, img.source_width, th, tw);
        if (dst.h <= 0 || dst.w <= 0)
            throw DecodeError("pad_to_aspect_ratio: a " + std::to_string(img.height) + "x" +
                              std::to_string(img.width) + " image leaves a " +
                              std::to_string(dst.h) + "x" + std::to_string(dst.w) +
                              " resized area inside " + std::to_string(th) + "x" +
                              std::to_string(tw) + " (output dimensions must be positive)");
    }
    const size_t src_stride = static_cast<size_t>(img.width) * C;
    const uint8_t* src_ptr = img.data() + static_cast<size_t>(src.y) * src_stride + static_cast<size_t>(src.x) * C;
    const size_t plane = static_cast<size_t>(th) * tw;

    if (cfg.output == OutputType::UInt8 && !cfg.channels_first) {
        if (cfg.fit == Fit::Pad) std::memset(out, 0, plane * C);
        uint8_t* o = out + (static_cast<size_t>(dst.y) * tw + dst.x) * C;
        resize_to_u8(src_ptr, src.h, src.w, C, src_stride, o, dst.h, dst.w, static_cast<size_t>(tw) * C,
                     cfg.interpolation, scratch.floats);
        return;
    }
    if (cfg.channels_first && cfg.interpolation == Interpolation::Bilinear) {
        // Straight into the planes: no HWC scratch image and no transpose pass.
        const size_t off = static_cast<size_t>(dst.y) * tw + dst.x;
        if (cfg.output == OutputType::Float32) {
            float* o = reinterpret_cast<float*>(out);
            if (cfg.fit == Fit::Pad) std::memset(o, 0, plane * C * sizeof(float));
            resize_bilinear_planar(src_ptr, src.h, src.w, C, src_stride, o + off, dst.h, dst.w, tw, plane);
        } else {
            if (cfg.fit == Fit::Pad) std::memset(out, 0, plane * C);
            resize_bilinear_planar(src_ptr, src.h, src.w, C, src_stride, out + off, dst.h, dst.w, tw, plane);
        }
        return;
    }
    // Float path. Straight into the output when it is float32 HWC; through scratch otherwise.
    const bool direct = cfg.output == OutputType::Float32 && !cfg.channels_first;
    float* f;
    if (direct) {
        f = reinterpret_cast<float*>(out);
    } else {
        scratch.floats.resize(plane * C);
        f = scratch.floats.data();
    }
    if (cfg.fit == Fit::Pad) std::memset(f, 0, plane * C * sizeof(float));
    resize_to_float(src_ptr, src.h, src.w, C, src_stride,
                    f + (static_cast<size_t>(dst.y) * tw + dst.x) * C, dst.h, dst.w,
                    static_cast<size_t>(tw) * C, cfg.interpolation);
    if (direct) return;
    // channels_first: transpose HWC scratch into CHW (uint8 HWC returned above).
    write_planes(f, plane, C, cfg.output, out);
}
}  // namespace

// ---------------------------------------------------------------------------------------
// Epoch iteration

struct EpochIterator::State {
    FileList files;
    LoaderConfig cfg;
    std::shared_ptr<BufferPool> pool;
    std::vector<uint32_t> order;
    int64_t epoch = 0;
    int64_t batch_size = 1;
    int64_t num_batches = 0;

    struct Slot {
        std::shared_ptr<Buffer> buffer;
        int remaining = -1;  // -1: not started
        std::vector<ImageFailure> failures;
    };
    std::vector<Slot> slots;  // one per batch; buffers are dropped once handed out

    std::mutex mu;
    std::condition_variable work_cv, done_cv;
    int64_t next_position = 0;
    int64_t consumed = 0;
    bool stop = false;
    std::vector<std::thread> threads;

    // Fed mode: bytes per position from the caller (see EpochIterator::feed).
    struct Fed {
        const uint8_t* data = nullptr;
        size_t size = 0;
        void* owner = nullptr;
        std::string error;
        bool present = false;
    };
    bool fed = false;
    std::vector<Fed> fed_items;
    std::set<int64_t> ready;  // fed, not yet taken by a worker
    int64_t claimed = 0;
    std::vector<std::pair<int64_t, void*>> released;

    int64_t batch_count(int64_t b) const {
        return std::min<int64_t>(batch_size, static_cast<int64_t>(order.size()) - b * batch_size);
    }

    void worker() {
        Scratch scratch;
        const size_t sample = cfg.sample_bytes();
        const int64_t n = static_cast<int64_t>(order.size());
        for (;;) {
            int64_t pos, b;
            uint8_t* slot_ptr;
            {
                std::unique_lock<std::mutex> lk(mu);
                if (!fed) {
                    work_cv.wait(lk, [&] {
                        return stop || next_position >= n ||
                               next_position < (consumed + cfg.prefetch) * batch_size;
                    });
                    if (stop || next_position >= n) return;
                    pos = next_position++;
                } else {
                    work_cv.wait(lk, [&] {
                        return stop || claimed >= n ||
                               (!ready.empty() && *ready.begin() < (consumed + cfg.prefetch) * batch_size);
                    });
                    if (stop || claimed >= n) return;
                    pos = *ready.begin();
                    ready.erase(ready.begin());
                    ++claimed;
                }
                b = pos / batch_size;
                Slot& s = slots[b];
                if (s.remaining < 0) {
                    s.remaining = static_cast<int>(batch_count(b));
                    lk.unlock();
                    auto buf = pool->acquire();
                    lk.lock();
                    s.buffer = std::move(buf);
                    work_cv.notify_all();
                } else {
                    work_cv.wait(lk, [&] { return stop || s.buffer != nullptr; });
                    if (stop) return;
                }
                slot_ptr = s.buffer->data + static_cast<size_t>(pos - b * batch_size) * sample;
            }
            const int64_t file = order[pos];
            std::string reason;
            try {
                if (!fed) {
                    read_file(files.path(static_cast<size_t>(file)), scratch.file);
                    process_image(scratch.file.data(), scratch.file.size(), cfg, scratch, slot_ptr,
                                  SampleKey{epoch, file});
                } else {
                    // Only this worker reads the entry now: it was taken out of `ready`.
                    const Fed& item = fed_items[pos];
                    if (!item.error.empty()) throw std::runtime_error(item.error);
                    process_image(item.data, item.size, cfg, scratch, slot_ptr, SampleKey{epoch, file});
                }
            } catch (const DecodeError& e) {
                reason = e.what();
            } catch (const std::bad_alloc&) {
                reason = "out of memory while decoding";
            } catch (const std::exception& e) {
                reason = e.what();
            }
            {
                std::lock_guard<std::mutex> lk(mu);
                Slot& s = slots[b];
                if (fed) {
                    Fed& item = fed_items[pos];
                    if (item.owner) released.emplace_back(pos, item.owner);
                    item = Fed{};
                    item.present = true;  // fed once; a second feed is refused
                }
                if (!reason.empty()) {
                    ImageFailure f;
                    f.position = pos;
                    f.file_index = file;
                    f.path = files.path(static_cast<size_t>(file));
                    f.reason = std::move(reason);
                    s.failures.push_back(std::move(f));
                }
                if (--s.remaining == 0) done_cv.notify_all();
            }
        }
    }

    // Safe to call from several threads at once (an exit handler closing the iterator
    // while the thread iterating it closes it too): each worker is joined exactly once.
    void shutdown() {
        std::vector<std::thread> mine;
        {
            std::lock_guard<std::mutex> lk(mu);
            stop = true;
            mine.swap(threads);
        }
        work_cv.notify_all();
        done_cv.notify_all();
        for (auto& t : mine)
            if (t.joinable()) t.join();
        std::vector<std::shared_ptr<Buffer>> drop;
        {
            std::lock_guard<std::mutex> lk(mu);
            for (auto& s : slots)
                if (s.buffer) drop.push_back(std::move(s.buffer));
            // Bytes fed but never decoded go back to their owner too.
            for (int64_t pos : ready) {
                Fed& item = fed_items[static_cast<size_t>(pos)];
                if (item.owner) released.emplace_back(pos, item.owner);
                item.owner = nullptr;
                item.data = nullptr;
            }
            ready.clear();
        }
        // `drop` releases the buffers here, outside the lock.
    }
};

EpochIterator::EpochIterator(std::unique_ptr<State> s) : s_(std::move(s)) {}
EpochIterator::~EpochIterator() { close(); }

void EpochIterator::close() {
    if (s_) s_->shutdown();
}

int64_t EpochIterator::num_batches() const { return s_->num_batches; }

namespace {
// Fills fed position `position` (bytes, or a failure) and wakes the workers; false once the
// iterator is stopping. `set` writes the slot under the lock.
template <typename Set>
bool fill_fed(EpochIterator::State& s, int64_t position, const char* what, Set set) {
    {
        std::lock_guard<std::mutex> lk(s.mu);
        if (!s.fed) throw std::logic_error(std::string(what) + " needs an iterator made with fed=true");
        if (position < 0 || position >= static_cast<int64_t>(s.fed_items.size()))
            throw std::out_of_range(std::string(what) + ": position outside the epoch order");
        if (s.fed_items[static_cast<size_t>(position)].present)
            throw std::invalid_argument(std::string(what) + ": position " + std::to_string(position) +
                                        " was already fed");
        if (s.stop) return false;
        auto& item = s.fed_items[static_cast<size_t>(position)];
        set(item);
        item.present = true;
        s.ready.insert(position);
    }
    s.work_cv.notify_all();
    return true;
}
}  // namespace

bool EpochIterator::feed(int64_t position, const uint8_t* data, size_t size, void* owner) {
    return fill_fed(*s_, position, "feed()", [&](State::Fed& item) {
        item.data = data;
        item.size = size;
        item.owner = owner;
    });
}

bool EpochIterator::feed_failure(int64_t position, std::string reason) {
    if (reason.empty()) reason = "could not be fetched";
    return fill_fed(*s_, position, "feed_failure()", [&](State::Fed& item) { item.error = std::move(reason); });
}

std::vector<std::pair<int64_t, void*>> EpochIterator::take_released() {
    std::vector<std::pair<int64_t, void*>> out;
    std::lock_guard<std::mutex> lk(s_->mu);
    out.swap(s_->released);
    return out;
}

EpochIterator::Status EpochIterator::next(Batch& out, int timeout_ms) {
    State& s = *s_;
    std::unique_lock<std::mutex> lk(s.mu);
    if (s.stop || s.consumed >= s.num_batches) return Status::End;
    const int64_t b = s.consumed;
    State::Slot& slot = s.slots[b];
    auto ready = [&] { return s.stop || slot.remaining == 0; };
    if (timeout_ms < 0) {
        s.done_cv.wait(lk, ready);
    } else if (!s.done_cv.wait_for(lk, std::chrono::milliseconds(timeout_ms), ready)) {
        return Status::Timeout;
    }
    if (s.stop) return Status::End;
    out.buffer = std::move(slot.buffer);
    out.first_position = b * s.batch_size;
    out.count = static_cast<int>(s.batch_count(b));
    s.consumed = b + 1;
    std::vector<ImageFailure> failures = std::move(slot.failures);
    lk.unlock();
    s.work_cv.notify_all();
    out.failures.clear();
    if (failures.empty()) return Status::Ready;
    std::sort(failures.begin(), failures.end(),
              [](const ImageFailure& a, const ImageFailure& b) { return a.position < b.position; });
    if (!s.cfg.skip_errors) {
        out.buffer.reset();
        throw BatchFailure(std::move(failures.front()));
    }
    // Pack the surviving samples to the front, keeping their order.
    const size_t sample = s.cfg.sample_bytes();
    int write = 0;
    size_t f = 0;
    for (int i = 0; i < out.count; ++i) {
        if (f < failures.size() && failures[f].position == out.first_position + i) {
            ++f;
            continue;
        }
        if (write != i)
            std::memmove(out.buffer->data + write * sample, out.buffer->data + i * sample, sample);
        ++write;
    }
    out.count = write;
    out.failures = std::move(failures);
    return Status::Ready;
}

Loader::Loader(FileList files, LoaderConfig cfg) : files_(std::move(files)), cfg_(cfg) {
    if (cfg_.prefetch < 1) cfg_.prefetch = 1;
    if (cfg_.num_threads <= 0)
        cfg_.num_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

std::unique_ptr<EpochIterator> Loader::iterate(std::vector<uint32_t> order, int batch_size, int64_t epoch,
                                               bool fed) const {
    if (batch_size < 1) throw std::invalid_argument("batch_size must be at least 1");
    for (uint32_t i : order)
        if (static_cast<size_t>(i) >= files_.size())
            throw std::out_of_range("file index out of range in the epoch order");
    auto st = std::make_unique<EpochIterator::State>();
    st->files = files_;
    st->cfg = cfg_;
    const size_t batch_bytes = cfg_.sample_bytes() * static_cast<size_t>(batch_size);
    // One pool per (loader, batch size); a new epoch reuses the previous epoch's buffers.
    if (!pool_ || pool_->bytes() != batch_bytes)
        pool_ = std::make_shared<BufferPool>(batch_bytes, cfg_.lock_memory,
                                             static_cast<size_t>(cfg_.prefetch) + 8);
    st->pool = pool_;
    st->order = std::move(order);
    st->epoch = epoch;
    st->batch_size = batch_size;
    const int64_t n = static_cast<int64_t>(st->order.size());
    st->num_batches = (n + batch_size - 1) / batch_size;
    st->slots.resize(static_cast<size_t>(st->num_batches));
    st->fed = fed;
    if (fed) st->fed_items.resize(static_cast<size_t>(n));
    const int threads = static_cast<int>(std::min<int64_t>(cfg_.num_threads, std::max<int64_t>(n, 1)));
    EpochIterator::State* raw = st.get();
    for (int i = 0; i < threads; ++i) raw->threads.emplace_back([raw] { raw->worker(); });
    return std::unique_ptr<EpochIterator>(new EpochIterator(std::move(st)));
}

// ---------------------------------------------------------------------------------------
// Checking files without producing batches

struct FileChecker::State {
    std::vector<std::string> paths;
    DecodeOptions opts;
    std::atomic<int64_t> next{0}, finished{0};
    std::atomic<bool> cancelled{false};
    std::mutex mu;
    std::condition_variable cv;
    std::vector<ImageFailure> failures;
    std::vector<std::thread> threads;
    int running = 0;

    void worker() {
        Scratch scratch;
        const int64_t n = static_cast<int64_t>(paths.size());
        for (;;) {
            const int64_t i = next.fetch_add(1);
            if (i >= n || cancelled.load()) break;
            std::string reason;
            try {
                read_file(paths[i], scratch.file);
                decode_image(scratch.file.data(), scratch.file.size(), opts, scratch.image);
            } catch (const std::bad_alloc&) {
                reason = "out of memory while decoding";
            } catch (const std::exception& e) {
                reason = e.what();
            }
            if (!reason.empty()) {
                ImageFailure f;
                f.file_index = i;
                f.path = paths[i];
                f.reason = std::move(reason);
                std::lock_guard<std::mutex> lk(mu);
                failures.push_back(std::move(f));
            }
            finished.fetch_add(1);
        }
        std::lock_guard<std::mutex> lk(mu);
        if (--running == 0) cv.notify_all();
    }
};

FileChecker::FileChecker(std::vector<std::string> paths, int channels, int64_t max_pixels, int num_threads,
                         Decoder decoder)
    : s_(std::make_unique<State>()) {
    s_->paths = std::move(paths);
    s_->opts.channels = channels;
    s_->opts.max_pixels = max_pixels;
    s_->opts.accurate_dct = s_->opts.pillow = decoder == Decoder::Pillow;
    if (num_threads <= 0) num_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    num_threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(num_threads, static_cast<int64_t>(s_->paths.size()))));
    s_->running = num_threads;
    State* raw = s_.get();
    for (int i = 0; i < num_threads; ++i) s_->threads.emplace_back([raw] { raw->worker(); });
}

FileChecker::~FileChecker() {
    cancel();
    for (auto& t : s_->threads)
        if (t.joinable()) t.join();
}

bool FileChecker::wait(int timeout_ms) {
    std::unique_lock<std::mutex> lk(s_->mu);
    return s_->cv.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] { return s_->running == 0; });
}

void FileChecker::cancel() { s_->cancelled.store(true); }
int64_t FileChecker::done() const { return s_->finished.load(); }
int64_t FileChecker::total() const { return static_cast<int64_t>(s_->paths.size()); }

std::vector<ImageFailure> FileChecker::failures() {
    std::lock_guard<std::mutex> lk(s_->mu);
    auto out = s_->failures;
    std::sort(out.begin(), out.end(),
              [](const ImageFailure& a, const ImageFailure& b) { return a.file_index < b.file_index; });
    return out;
}

void Loader::load_one(size_t index, uint8_t* out, int64_t epoch) const {
    Scratch scratch;
    if (index >= files_.size()) throw std::out_of_range("file index out of range");
    read_file(files_.path(index), scratch.file);
    process_image(scratch.file.data(), scratch.file.size(), cfg_, scratch, out,
                  SampleKey{epoch, static_cast<int64_t>(index)});
}

}  // namespace pyimgdir
