// Time LibMF's own mf_train on ratings written by benchmarks/scale.py, and score it on held-out ratings.
//
// Usage:  libmf_driver DATA_DIR NR_THREADS [K [NR_ITERS]]       (K = 32, NR_ITERS = 10 by default)
//
// DATA_DIR holds six raw little-endian arrays, one value after another, no header:
//   train_users.i32  train_items.i32  train_ratings.f32      (int32 row, int32 column, float32 rating)
//   test_users.i32   test_items.i32   test_ratings.f32
// Ids are 0-based; the matrix is (1 + largest training user id) x (1 + largest training item id).
// A held-out pair outside that range (a negative id, say), or whose row or column had no training
// rating, gets LibMF's fallback (the training mean: mf_predict returns model->b).
//
// Settings: mf_get_default_param() (LibMF's defaults: squared loss, lambda_p2 = lambda_q2 = 0.1, no L1,
// eta = 0.1, nr_bins = 26, copy_data), with k, nr_iters and nr_threads from the command line and quiet on.
//
// Measured: the wall clock (std::chrono::steady_clock) of the mf_train call alone, nothing else; the
// held-out RMSE of mf_predict, clipped to the training ratings' range (as every other row of the
// benchmark clips) and unclipped; the peak resident set during mf_train: VmHWM of /proc/self/status,
// reset just before the call (writing 5 to /proc/self/clear_refs, Linux >= 4.0), and VmRSS just before
// it; where the reset fails, getrusage's ru_maxrss since the process started.
//
// Output: one line of JSON on stdout; errors go to stderr with exit status 1 (2 for bad usage). The clipped
// held-out predictions are also written to DATA_DIR/predictions.f32 (float32, in the order of the test arrays),
// after the timing, for benchmarks that score them themselves (benchmarks/movielens.py: RMSE and MAE).
//
// Built by benchmarks/scale.py (build_libmf_driver), either with LibMF's mf.cpp from the libmf 0.9.2
// source distribution and LibMF's Makefile flags, or linked against the libmf binding's shared library.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <sys/resource.h>

#include "mf.h"

namespace {

template <typename T>
std::vector<T> read_array(const std::string &path) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in)
        throw std::runtime_error(path + ": cannot open");
    const std::streamoff size = in.tellg();
    if (size % static_cast<std::streamoff>(sizeof(T)) != 0)
        throw std::runtime_error(path + ": size " + std::to_string(size) + " is not a multiple of " +
                                 std::to_string(sizeof(T)) + " bytes");
    std::vector<T> values(static_cast<std::size_t>(size) / sizeof(T));
    in.seekg(0);
    if (!values.empty() && !in.read(reinterpret_cast<char *>(values.data()), size))
        throw std::runtime_error(path + ": short read");
    return values;
}

struct Ratings {
    std::vector<std::int32_t> users, items;
    std::vector<float> values;
};

Ratings read_ratings(const std::string &dir, const std::string &part) {
    Ratings r{read_array<std::int32_t>(dir + "/" + part + "_users.i32"),
              read_array<std::int32_t>(dir + "/" + part + "_items.i32"),
              read_array<float>(dir + "/" + part + "_ratings.f32")};
    if (r.users.size() != r.items.size() || r.users.size() != r.values.size())
        throw std::runtime_error(dir + ": the " + part + " arrays differ in length (" + std::to_string(r.users.size()) +
                                 " users, " + std::to_string(r.items.size()) + " items, " +
                                 std::to_string(r.values.size()) + " ratings)");
    for (std::size_t j = 0; j < r.users.size(); ++j) {
        if (!std::isfinite(r.values[j]))
            throw std::runtime_error(dir + ": " + part + " rating " + std::to_string(j) + " is not finite");
        if (part == "train" && (r.users[j] < 0 || r.items[j] < 0))
            throw std::runtime_error(dir + ": training rating " + std::to_string(j) + " has a negative id");
    }
    return r;
}

// A "kB" field of /proc/self/status in bytes; -1 if absent.
long long status_bytes(const char *key) {
    std::ifstream in("/proc/self/status");
    const std::string prefix = std::string(key) + ":";
    for (std::string line; std::getline(in, line);)
        if (line.compare(0, prefix.size(), prefix) == 0)
            return std::atoll(line.c_str() + prefix.size()) * 1024LL;
    return -1;
}

bool reset_peak_rss() {
    std::ofstream out("/proc/self/clear_refs");
    if (!out)
        return false;
    out << "5";
    out.flush();
    return static_cast<bool>(out);
}

long long max_rss_since_start() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<long long>(usage.ru_maxrss) * 1024LL;  // kB on Linux
}

int parse_positive(const char *text, const char *name) {
    char *end = nullptr;
    const long value = std::strtol(text, &end, 10);
    if (end == text || *end != '\0' || value < 1 || value > 1 << 20)
        throw std::invalid_argument(std::string(name) + " must be a positive integer; got '" + text + "'");
    return static_cast<int>(value);
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 3 || argc > 5) {
        std::fprintf(stderr, "usage: %s DATA_DIR NR_THREADS [K [NR_ITERS]]\n", argv[0]);
        return 2;
    }
    try {
        const std::string dir = argv[1];
        mf::mf_parameter param = mf::mf_get_default_param();
        param.nr_threads = parse_positive(argv[2], "NR_THREADS");
        param.k = argc > 3 ? parse_positive(argv[3], "K") : 32;
        param.nr_iters = argc > 4 ? parse_positive(argv[4], "NR_ITERS") : 10;
        param.quiet = true;

        const Ratings train = read_ratings(dir, "train");
        const Ratings test = read_ratings(dir, "test");
        if (train.values.empty())
            throw std::runtime_error(dir + ": no training ratings");

        std::vector<mf::mf_node> nodes(train.values.size());
        mf::mf_problem problem{0, 0, static_cast<mf::mf_long>(nodes.size()), nodes.data()};
        float low = train.values[0], high = train.values[0];
        for (std::size_t j = 0; j < nodes.size(); ++j) {
            nodes[j] = mf::mf_node{train.users[j], train.items[j], train.values[j]};
            problem.m = std::max(problem.m, train.users[j] + 1);
            problem.n = std::max(problem.n, train.items[j] + 1);
            low = std::min(low, train.values[j]);
            high = std::max(high, train.values[j]);
        }

        const bool can_reset = reset_peak_rss();
        const long long before = status_bytes("VmRSS");
        const auto start = std::chrono::steady_clock::now();
        mf::mf_model *model = mf::mf_train(&problem, param);
        const auto stop = std::chrono::steady_clock::now();
        long long peak = can_reset ? status_bytes("VmHWM") : -1;
        const bool since_fit = peak >= 0;
        if (!since_fit)
            peak = max_rss_since_start();
        if (model == nullptr)
            throw std::runtime_error("mf_train returned no model");
        const double seconds = std::chrono::duration<double>(stop - start).count();

        double sse = 0.0, sse_unclipped = 0.0;
        std::vector<float> predictions(test.values.size());
        for (std::size_t j = 0; j < test.values.size(); ++j) {
            const double z = mf::mf_predict(model, test.users[j], test.items[j]);
            const double clipped = std::min<double>(high, std::max<double>(low, z));
            const double e = test.values[j] - z;
            const double c = test.values[j] - clipped;
            sse_unclipped += e * e;
            sse += c * c;
            predictions[j] = static_cast<float>(clipped);
        }
        {
            const std::string path = dir + "/predictions.f32";
            std::ofstream out(path, std::ios::binary | std::ios::trunc);
            if (!predictions.empty())
                out.write(reinterpret_cast<const char *>(predictions.data()),
                          static_cast<std::streamsize>(predictions.size() * sizeof(float)));
            if (!out)
                throw std::runtime_error(path + ": cannot write the predictions");
        }
        const double n_test = static_cast<double>(test.values.size());
        const double rmse = test.values.empty() ? NAN : std::sqrt(sse / n_test);
        const double rmse_unclipped = test.values.empty() ? NAN : std::sqrt(sse_unclipped / n_test);
        mf::mf_destroy_model(&model);

        auto number = [](double x) {
            char text[32];
            std::snprintf(text, sizeof text, "%.9g", x);
            return std::isfinite(x) ? std::string(text) : std::string("null");
        };
        std::printf(
            "{\"seconds\": %.6f, \"rmse\": %s, \"rmse_unclipped\": %s, \"peak_rss_bytes\": %lld, "
            "\"peak_rss_since\": \"%s\", \"rss_before_fit_bytes\": %lld, \"m\": %d, \"n\": %d, "
            "\"train_ratings\": %zu, \"test_ratings\": %zu, \"k\": %d, \"nr_iters\": %d, \"nr_threads\": %d, "
            "\"nr_bins\": %d, \"eta\": %g, \"lambda_p1\": %g, \"lambda_q1\": %g, \"lambda_p2\": %g, "
            "\"lambda_q2\": %g}\n",
            seconds, number(rmse).c_str(), number(rmse_unclipped).c_str(), peak, since_fit ? "fit" : "start",
            before, problem.m, problem.n, train.values.size(), test.values.size(), param.k, param.nr_iters,
            param.nr_threads, param.nr_bins, param.eta, param.lambda_p1, param.lambda_q1, param.lambda_p2,
            param.lambda_q2);
        return 0;
    } catch (const std::invalid_argument &error) {
        std::fprintf(stderr, "libmf_driver: %s\n", error.what());
        return 2;
    } catch (const std::exception &error) {
        std::fprintf(stderr, "libmf_driver: %s\n", error.what());
        return 1;
    }
}
