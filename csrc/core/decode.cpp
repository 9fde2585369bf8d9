#include "core/decode.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/decode_bmp.hpp"
#include "core/decode_gif.hpp"
#include "core/decode_jpeg.hpp"
#include "core/decode_png.hpp"

namespace pyimgdir {

const char* format_name(ImageFormat f) {
    switch (f) {
        case ImageFormat::Jpeg: return "JPEG";
        case ImageFormat::Png: return "PNG";
        case ImageFormat::Gif: return "GIF";
        case ImageFormat::Bmp: return "BMP";
        case ImageFormat::WebP: return "WebP";
        default: return "unknown";
    }
}

ImageFormat sniff_format(const uint8_t* d, size_t n) {
    if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return ImageFormat::Jpeg;
    if (n >= 8 && std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return ImageFormat::Png;
    if (n >= 4 && std::memcmp(d, "GIF8", 4) == 0) return ImageFormat::Gif;
    if (n >= 2 && d[0] == 'B' && d[1] == 'M') return ImageFormat::Bmp;
    if (n >= 12 && std::memcmp(d, "RIFF", 4) == 0 && std::memcmp(d + 8, "WEBP", 4) == 0)
        return ImageFormat::WebP;
    return ImageFormat::Unknown;
}

uint8_t rgb_to_gray(uint8_t r, uint8_t g, uint8_t b) {
    return static_cast<uint8_t>((9797u * r + 19234u * g + 3737u * b) >> 15);
}

namespace {
// Pillow makes every grey image from its RGB form ("L" from "RGB", "P", "RGBA", "CMYK"),
// and the RGB form of a grey image is the grey replicated, which pillow_gray maps back to
// itself: so decoding to RGB and converting gives Pillow's result for every source mode.
void decode_pillow_gray(const uint8_t* data, size_t size, const DecodeOptions& opts, Image& out) {
    DecodeOptions rgb = opts;
    rgb.channels = 3;
    decode_image(data, size, rgb, out);
    uint8_t* p = out.data();
    const size_t n = static_cast<size_t>(out.height) * static_cast<size_t>(out.width);
    for (size_t i = 0; i < n; ++i) p[i] = pillow_gray(p[3 * i], p[3 * i + 1], p[3 * i + 2]);
    out.channels = 1;
    out.pixels.resize(n);
}
}  // namespace

void decode_image(const uint8_t* data, size_t size, const DecodeOptions& opts, Image& out) {
    if (opts.channels != 1 && opts.channels != 3 && opts.channels != 4)
        throw DecodeError("channels must be 1, 3 or 4");
    if (size == 0) throw DecodeError("empty file (0 bytes)");
    if (opts.pillow && opts.channels == 1) return decode_pillow_gray(data, size, opts, out);
    switch (sniff_format(data, size)) {
        case ImageFormat::Jpeg: return decode_jpeg(data, size, opts, out);
        case ImageFormat::Png: return decode_png(data, size, opts, out);
        case ImageFormat::Gif: return decode_gif(data, size, opts, out);
        case ImageFormat::Bmp: return decode_bmp(data, size, opts, out);
        case ImageFormat::WebP:
            throw DecodeError("WebP images are not supported (a .webp file under an image extension)");
        default:
            throw DecodeError(
                "unknown image file format (the first bytes are not JPEG, PNG, GIF or BMP)");
    }
}

void image_dimensions(const uint8_t* data, size_t size, int channels, int64_t max_pixels, int& height, int& width) {
    if (size > 0 && sniff_format(data, size) == ImageFormat::Jpeg) return jpeg_dimensions(data, size, height, width);
    thread_local Image img;
    DecodeOptions o;
    o.channels = channels;
    o.max_pixels = max_pixels;
    decode_image(data, size, o, img);
    height = img.height;
    width = img.width;
}

namespace {

const char* file_kind(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO (named pipe)";
    if (S_ISSOCK(m)) return "a socket";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    return "not a regular file";
}

[[noreturn]] void refuse_kind(mode_t m) {
    // A FIFO or a device would block or never end (/dev/zero); a directory cannot be read.
    throw DecodeError(std::string("cannot read file: it is ") + file_kind(m) + ", not a regular file");
}

struct Fd {
    int fd;
    ~Fd() { ::close(fd); }
};

// Reads into buf[got, size()) until it is full or the file ends; true at end of file.
bool fill(int fd, std::vector<uint8_t>& buf, size_t& got) {
    while (got < buf.size()) {
        const ssize_t r = ::read(fd, buf.data() + got, buf.size() - got);
        if (r == 0) return true;
        if (r < 0) {
            if (errno == EINTR) continue;
            throw DecodeError(std::string("read failed: ") + std::strerror(errno));
        }
        got += static_cast<size_t>(r);
    }
    return false;
}

// Bytes read before deciding whether the rest of the file is worth reading.
constexpr size_t kHeadBytes = 64 * 1024;

}  // namespace

void read_file(const std::string& path, std::vector<uint8_t>& buf) {
    // Only regular files are opened: opening a device can have side effects, and opening a
    // FIFO waits for a writer. O_NONBLOCK covers a regular file swapped for a FIFO between
    // the two calls (it changes nothing for regular files); fstat then sees the swap.
    struct stat st;
    if (::stat(path.c_str(), &st) != 0)
        throw DecodeError(std::string("cannot open file: ") + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) refuse_kind(st.st_mode);
    const Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)};
    if (f.fd < 0) throw DecodeError(std::string("cannot open file: ") + std::strerror(errno));
    if (::fstat(f.fd, &st) != 0) throw DecodeError(std::string("cannot read file: ") + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) refuse_kind(st.st_mode);

    // st_size is a hint only: the file may change under us, so read to EOF. The head is read
    // first: a big file that is no image (a video named .jpg, a sparse disk image) is left
    // there, as decode_image refuses it from its first bytes alone.
    const size_t hint = st.st_size > 0 ? static_cast<size_t>(st.st_size) + 1 : kHeadBytes;
    buf.resize(std::min(hint, kHeadBytes));
    size_t got = 0;
    bool eof = fill(f.fd, buf, got);
    if (!eof && sniff_format(buf.data(), got) != ImageFormat::Unknown) {
        buf.resize(std::max(hint, 2 * got));
        while (!fill(f.fd, buf, got)) buf.resize(2 * buf.size());
    }
    buf.resize(got);
}

}  // namespace pyimgdir
