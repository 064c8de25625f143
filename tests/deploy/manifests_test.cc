// Renders every Kubernetes variant in deploy/k8s with `kubectl kustomize` and
// checks what a cluster would get: the native-sidecar shape, probes on the
// port and service egressd really serves, the restricted securityContext, a
// termination budget that fits the shutdown grace, and a ConfigMap that
// egressd's configuration checker accepts. Also checks that deploy/Dockerfile
// still builds the way ./dev does, and the example NetworkPolicies' selectors.
//
// Without kubectl on PATH the rendering tests are skipped with a visible
// message; the checks that need no kubectl still run.
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/config/config.h"
#include "tests/deploy/command.h"
#include "tests/support/subprocess.h"
#include "yaml-cpp/yaml.h"

namespace egress::testing {
namespace {

namespace fs = std::filesystem;

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kFetchPort = 7070;
constexpr int kHealthPort = 7071;
constexpr int kMetricsPort = 9902;
constexpr char kHealthService[] = "egress.v1.Fetcher";
constexpr int kImageUser = 65532;
constexpr char kImage[] = "registry.example.com/egressd:0.1.0";

// A copy of deploy/k8s with symlinks resolved: kustomize refuses files whose
// real path lies outside the kustomization root, which Bazel's runfile
// symlinks do.
const std::string& K8sDir() {
  static const std::string* dir = [] {
    const std::string copy = absl::StrCat(MakeTempDir("k8s"), "/k8s");
    CommandResult cp =
        RunCommand({"/bin/cp", "-rL", RunfilePath("deploy/k8s"), copy});
    if (cp.exit_code != 0) {
      std::fprintf(stderr, "cp deploy/k8s failed: %s\n", cp.err.c_str());
    }
    return new std::string(copy);
  }();
  return *dir;
}

std::string Kubectl() {
  static const std::string* path = new std::string(FindOnPath("kubectl"));
  return *path;
}

#define SKIP_WITHOUT_KUBECTL()                                             \
  do {                                                                     \
    if (Kubectl().empty()) {                                               \
      std::fprintf(stderr,                                                 \
                   "SKIP: kubectl is not on PATH; the Kubernetes "         \
                   "manifests were NOT rendered or checked.\n");           \
      GTEST_SKIP() << "kubectl is not on PATH";                            \
    }                                                                      \
  } while (0)

// `kubectl kustomize deploy/k8s/<variant>`, parsed.
std::vector<YAML::Node> Render(const std::string& variant) {
  CommandResult r =
      RunCommand({Kubectl(), "kustomize", absl::StrCat(K8sDir(), "/", variant)});
  EXPECT_EQ(r.exit_code, 0) << "kubectl kustomize " << variant << ":\n"
                            << r.err;
  if (r.exit_code != 0) return {};
  return YAML::LoadAll(r.out);
}

// The object of `kind` whose name is `name` (or starts with `name` + "-",
// for generated names with a hash suffix). Null node if none.
YAML::Node Find(const std::vector<YAML::Node>& objects, const std::string& kind,
                const std::string& name) {
  for (const YAML::Node& o : objects) {
    if (o["kind"].as<std::string>() != kind) continue;
    const std::string n = o["metadata"]["name"].as<std::string>();
    if (n == name || absl::StartsWith(n, absl::StrCat(name, "-"))) return o;
  }
  return YAML::Node();
}

YAML::Node Named(const YAML::Node& list, const std::string& name) {
  if (list.IsSequence()) {
    for (const YAML::Node& item : list) {
      if (item["name"] && item["name"].as<std::string>() == name) return item;
    }
  }
  return YAML::Node();
}

std::string Emit(const YAML::Node& node) {
  YAML::Emitter out;
  out << node;
  return out.c_str();
}

// Every key/value of `selector` is a label of `labels`.
bool Selects(const YAML::Node& selector, const YAML::Node& labels) {
  if (!selector.IsMap() || selector.size() == 0) return false;
  for (const auto& kv : selector) {
    const YAML::Node value = labels[kv.first.as<std::string>()];
    if (!value || value.as<std::string>() != kv.second.as<std::string>()) {
      return false;
    }
  }
  return true;
}

int PreStopSleepSeconds(const YAML::Node& container) {
  const YAML::Node sleep = container["lifecycle"]["preStop"]["sleep"];
  return sleep ? sleep["seconds"].as<int>() : 0;
}

// The ConfigMap's config.yaml checked by check_config (as `egressd
// --check_config` would) and loaded by the library for its values.
EgressdConfig CheckConfigMap(const std::vector<YAML::Node>& objects) {
  const YAML::Node config_map = Find(objects, "ConfigMap", "egressd-config");
  EXPECT_TRUE(config_map.IsMap()) << "no ConfigMap egressd-config";
  if (!config_map.IsMap()) return {};
  const std::string text = config_map["data"]["config.yaml"].as<std::string>();
  const std::string path = absl::StrCat(MakeTempDir("cm"), "/config.yaml");
  EXPECT_TRUE(WriteFile(path, text).ok());
  CommandResult check =
      RunCommand({RunfilePath("server/config/check_config"), path});
  EXPECT_EQ(check.exit_code, 0) << check.err;
  EXPECT_THAT(check.out, HasSubstr("listen:"));
  absl::StatusOr<EgressdConfig> config = LoadConfigFile(path);
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : EgressdConfig{};
}

// What every egressd container must have, sidecar or gateway.
void CheckEgressdContainer(const YAML::Node& c, const EgressdConfig& config,
                           const std::string& config_map_name,
                           const YAML::Node& pod_spec) {
  SCOPED_TRACE(Emit(c));
  EXPECT_EQ(c["image"].as<std::string>(), kImage);

  // Probes: gRPC health of the Fetcher, on the health listener (health
  // only), on an address kubelet can reach (it probes the Pod IP).
  EXPECT_EQ(config.listeners.listen.port, kFetchPort);
  ASSERT_TRUE(config.listeners.health_listen.has_value());
  EXPECT_EQ(config.listeners.health_listen->port, kHealthPort);
  EXPECT_TRUE(config.listeners.health_listen->host == "0.0.0.0" ||
              config.listeners.health_listen->host == "[::]")
      << "kubelet probes the Pod IP; health_listen is "
      << config.listeners.health_listen->ToString();
  EXPECT_TRUE(config.listeners.admin_listen.IsLoopback());
  for (const char* probe : {"startupProbe", "readinessProbe", "livenessProbe"}) {
    SCOPED_TRACE(probe);
    const YAML::Node grpc = c[probe]["grpc"];
    ASSERT_TRUE(grpc.IsMap());
    EXPECT_EQ(grpc["port"].as<int>(), kHealthPort);
    EXPECT_EQ(grpc["service"].as<std::string>(), kHealthService);
  }
  // A draining egressd fails its probes; liveness must not kill it before
  // shutdown_grace is over.
  const YAML::Node liveness = c["livenessProbe"];
  EXPECT_GT(absl::Seconds(liveness["periodSeconds"].as<int>() *
                          liveness["failureThreshold"].as<int>()),
            config.timeouts.shutdown_grace);

  EXPECT_EQ(Named(c["ports"], "egressd-health")["containerPort"].as<int>(),
            kHealthPort);
  EXPECT_EQ(Named(c["ports"], "egressd-metrics")["containerPort"].as<int>(),
            config.listeners.metrics_listen.port);

  const YAML::Node sc = c["securityContext"];
  EXPECT_TRUE(sc["runAsNonRoot"].as<bool>());
  EXPECT_EQ(sc["runAsUser"].as<int>(), kImageUser);
  EXPECT_FALSE(sc["allowPrivilegeEscalation"].as<bool>());
  EXPECT_TRUE(sc["readOnlyRootFilesystem"].as<bool>());
  ASSERT_TRUE(sc["capabilities"]["drop"].IsSequence());
  EXPECT_EQ(sc["capabilities"]["drop"].size(), 1u);
  EXPECT_EQ(sc["capabilities"]["drop"][0].as<std::string>(), "ALL");
  EXPECT_EQ(sc["seccompProfile"]["type"].as<std::string>(), "RuntimeDefault");

  EXPECT_TRUE(c["resources"]["requests"]["cpu"]);
  EXPECT_TRUE(c["resources"]["requests"]["memory"]);
  EXPECT_TRUE(c["resources"]["limits"]["memory"]);
  EXPECT_GT(PreStopSleepSeconds(c), 0);

  // The image starts egressd --config=/etc/egressd/config.yaml: the
  // ConfigMap (key config.yaml) must be mounted there, by its generated name.
  const YAML::Node mount = Named(c["volumeMounts"], "egressd-config");
  ASSERT_TRUE(mount.IsMap());
  EXPECT_EQ(mount["mountPath"].as<std::string>(), "/etc/egressd");
  const YAML::Node volume = Named(pod_spec["volumes"], "egressd-config");
  ASSERT_TRUE(volume.IsMap());
  EXPECT_EQ(volume["configMap"]["name"].as<std::string>(), config_map_name);
  const YAML::Node secrets = Named(pod_spec["volumes"], "egressd-secrets");
  ASSERT_TRUE(secrets.IsMap());
  EXPECT_TRUE(secrets["secret"]["optional"].as<bool>());
}

// Prometheus finds the metrics port through the pod's annotations.
void CheckScrapeAnnotations(const YAML::Node& pod_template,
                            const EgressdConfig& config) {
  const YAML::Node a = pod_template["metadata"]["annotations"];
  ASSERT_TRUE(a.IsMap());
  EXPECT_EQ(a["prometheus.io/scrape"].as<std::string>(), "true");
  EXPECT_EQ(a["prometheus.io/port"].as<std::string>(),
            absl::StrCat(config.listeners.metrics_listen.port));
  EXPECT_EQ(a["prometheus.io/path"].as<std::string>(), "/metrics");
  EXPECT_EQ(config.listeners.metrics_listen.port, kMetricsPort);
  EXPECT_FALSE(config.listeners.metrics_listen.IsLoopback())
      << "Prometheus scrapes the Pod IP";
}

TEST(SidecarExampleTest, EgressdIsANativeSidecar) {
  SKIP_WITHOUT_KUBECTL();
  const std::vector<YAML::Node> objects = Render("sidecar-example");
  ASSERT_FALSE(objects.empty());
  const EgressdConfig config = CheckConfigMap(objects);
  const YAML::Node deployment = Find(objects, "Deployment", "example-app");
  ASSERT_TRUE(deployment.IsMap());
  const YAML::Node pod = deployment["spec"]["template"];
  const YAML::Node spec = pod["spec"];

  // Native sidecar: an init container that keeps running, first so that
  // any other init container can already make egress calls.
  ASSERT_TRUE(spec["initContainers"].IsSequence());
  const YAML::Node egressd = spec["initContainers"][0];
  EXPECT_EQ(egressd["name"].as<std::string>(), "egressd");
  EXPECT_EQ(egressd["restartPolicy"].as<std::string>(), "Always");
  EXPECT_FALSE(Named(spec["containers"], "egressd").IsMap())
      << "egressd must not be a regular container in the sidecar variant";
  const YAML::Node app = Named(spec["containers"], "app");
  ASSERT_TRUE(app.IsMap());
  const YAML::Node target = Named(app["env"], "EGRESSD_TARGET");
  ASSERT_TRUE(target.IsMap());
  EXPECT_EQ(target["value"].as<std::string>(),
            absl::StrCat("127.0.0.1:", kFetchPort));

  const std::string config_map_name =
      Find(objects, "ConfigMap", "egressd-config")["metadata"]["name"]
          .as<std::string>();
  CheckEgressdContainer(egressd, config, config_map_name, spec);
  CheckScrapeAnnotations(pod, config);
  // Fetch is for this pod's application only: on loopback, not a pod port.
  EXPECT_TRUE(config.listeners.listen.IsLoopback())
      << "the sidecar's Fetch must not face the cluster; listen is "
      << config.listeners.listen.ToString();
  EXPECT_FALSE(Named(egressd["ports"], "egressd-grpc").IsMap());

  // Termination: the application gets SIGTERM (after its preStop), exits,
  // then egressd runs its preStop and drains for shutdown_grace. All of it
  // must fit in the grace period, with room for the application's drain.
  int pre_stops = 0;
  for (const YAML::Node& c : spec["containers"]) pre_stops += PreStopSleepSeconds(c);
  pre_stops += PreStopSleepSeconds(egressd);
  const absl::Duration budget =
      absl::Seconds(spec["terminationGracePeriodSeconds"].as<int>());
  EXPECT_LT(absl::Seconds(pre_stops) + config.timeouts.shutdown_grace +
                absl::Seconds(10),
            budget);
}

TEST(GatewayTest, DeploymentServicePdbAndHpaFitTogether) {
  SKIP_WITHOUT_KUBECTL();
  const std::vector<YAML::Node> objects = Render("gateway");
  ASSERT_FALSE(objects.empty());
  const EgressdConfig config = CheckConfigMap(objects);
  const YAML::Node deployment = Find(objects, "Deployment", "egressd-gateway");
  ASSERT_TRUE(deployment.IsMap());
  const YAML::Node pod = deployment["spec"]["template"];
  const YAML::Node spec = pod["spec"];
  const YAML::Node labels = pod["metadata"]["labels"];
  EXPECT_TRUE(Selects(deployment["spec"]["selector"]["matchLabels"], labels));

  const YAML::Node egressd = Named(spec["containers"], "egressd");
  ASSERT_TRUE(egressd.IsMap());
  EXPECT_FALSE(egressd["restartPolicy"]) << "only init containers have one";
  const std::string config_map_name =
      Find(objects, "ConfigMap", "egressd-config")["metadata"]["name"]
          .as<std::string>();
  CheckEgressdContainer(egressd, config, config_map_name, spec);
  CheckScrapeAnnotations(pod, config);
  // The gateway's Fetch faces its clients, each limited.
  EXPECT_TRUE(config.listeners.listen.host == "0.0.0.0" ||
              config.listeners.listen.host == "[::]")
      << config.listeners.listen.ToString();
  EXPECT_EQ(Named(egressd["ports"], "egressd-grpc")["containerPort"].as<int>(),
            kFetchPort);
  EXPECT_GT(config.limits.max_in_flight_per_caller, 0)
      << "one caller must not take every slot of a shared gateway";
  EXPECT_TRUE(config.limits.caller_metadata_key.empty())
      << "callers are told apart by IP: a metadata value is theirs to choose";
  EXPECT_FALSE(spec["initContainers"])
      << "the sidecar patch must not touch the gateway";

  // preStop (endpoints go away while egressd still serves) + shutdown_grace
  // within terminationGracePeriodSeconds.
  EXPECT_LT(absl::Seconds(PreStopSleepSeconds(egressd)) +
                config.timeouts.shutdown_grace,
            absl::Seconds(spec["terminationGracePeriodSeconds"].as<int>()));

  int services = 0;
  for (const YAML::Node& o : objects) {
    if (o["kind"].as<std::string>() != "Service") continue;
    ++services;
    SCOPED_TRACE(o["metadata"]["name"].as<std::string>());
    EXPECT_TRUE(Selects(o["spec"]["selector"], labels));
    const YAML::Node port = o["spec"]["ports"][0];
    EXPECT_EQ(port["port"].as<int>(), kFetchPort);
    EXPECT_EQ(port["targetPort"].as<std::string>(), "egressd-grpc");
  }
  EXPECT_EQ(services, 2);  // ClusterIP and headless

  const YAML::Node pdb =
      Find(objects, "PodDisruptionBudget", "egressd-gateway");
  ASSERT_TRUE(pdb.IsMap());
  EXPECT_TRUE(Selects(pdb["spec"]["selector"]["matchLabels"], labels));

  const YAML::Node hpa =
      Find(objects, "HorizontalPodAutoscaler", "egressd-gateway");
  ASSERT_TRUE(hpa.IsMap());
  EXPECT_EQ(hpa["spec"]["scaleTargetRef"]["kind"].as<std::string>(),
            "Deployment");
  EXPECT_EQ(hpa["spec"]["scaleTargetRef"]["name"].as<std::string>(),
            "egressd-gateway");
  EXPECT_GE(hpa["spec"]["minReplicas"].as<int>(), 2)
      << "with maxUnavailable 1 in the PDB, one pod must remain";
  EXPECT_EQ(hpa["spec"]["metrics"][0]["resource"]["name"].as<std::string>(),
            "cpu");
}

TEST(VariantsTest, SidecarAndGatewayRunTheSameEgressdContainer) {
  SKIP_WITHOUT_KUBECTL();
  const YAML::Node sidecar =
      Find(Render("sidecar-example"), "Deployment",
           "example-app")["spec"]["template"]["spec"]["initContainers"][0];
  const YAML::Node gateway = Named(
      Find(Render("gateway"), "Deployment",
           "egressd-gateway")["spec"]["template"]["spec"]["containers"],
      "egressd");
  ASSERT_TRUE(sidecar.IsMap());
  ASSERT_TRUE(gateway.IsMap());
  for (const char* field :
       {"image", "imagePullPolicy", "startupProbe", "readinessProbe",
        "livenessProbe", "lifecycle", "securityContext", "volumeMounts"}) {
    EXPECT_EQ(Emit(sidecar[field]), Emit(gateway[field])) << field;
  }
  // The same ports but Fetch's, which only the gateway exposes.
  for (const char* port : {"egressd-health", "egressd-metrics"}) {
    EXPECT_EQ(Emit(Named(sidecar["ports"], port)),
              Emit(Named(gateway["ports"], port)))
        << port;
  }
}

// The example NetworkPolicies must select the pods the variants create.
TEST(NetworkPolicyTest, SelectorsMatchTheVariantsAndOnlyEgressdGoesOut) {
  SKIP_WITHOUT_KUBECTL();
  const YAML::Node gateway_labels =
      Find(Render("gateway"), "Deployment",
           "egressd-gateway")["spec"]["template"]["metadata"]["labels"];
  const YAML::Node app_labels =
      Find(Render("sidecar-example"), "Deployment",
           "example-app")["spec"]["template"]["metadata"]["labels"];
  ASSERT_TRUE(gateway_labels.IsMap());
  ASSERT_TRUE(app_labels.IsMap());

  const std::vector<YAML::Node> policies = YAML::LoadAllFromFile(
      absl::StrCat(K8sDir(), "/networkpolicy.yaml"));
  std::map<std::string, YAML::Node> by_name;
  for (const YAML::Node& p : policies) {
    EXPECT_EQ(p["kind"].as<std::string>(), "NetworkPolicy");
    by_name[p["metadata"]["name"].as<std::string>()] = p;
  }
  ASSERT_EQ(by_name.size(), 4u);

  // 1. Clients: out only to the gateway's Fetch port and DNS, no ipBlock.
  const YAML::Node clients = by_name["egressd-clients-egress"];
  for (const YAML::Node& rule : clients["spec"]["egress"]) {
    for (const YAML::Node& to : rule["to"]) EXPECT_FALSE(to["ipBlock"]);
    for (const YAML::Node& port : rule["ports"]) {
      const int p = port["port"].as<int>();
      EXPECT_TRUE(p == kFetchPort || p == 53) << p;
    }
  }
  EXPECT_TRUE(Selects(clients["spec"]["egress"][0]["to"][0]["podSelector"]
                          ["matchLabels"],
                      gateway_labels));

  // 2. and 3. select the gateway pods; Fetch only from clients.
  for (const char* name : {"egressd-gateway-ingress", "egressd-gateway-egress"}) {
    EXPECT_TRUE(Selects(by_name[name]["spec"]["podSelector"]["matchLabels"],
                        gateway_labels))
        << name;
  }
  for (const YAML::Node& rule : by_name["egressd-gateway-ingress"]["spec"]["ingress"]) {
    if (rule["ports"][0]["port"].as<int>() != kFetchPort) continue;
    EXPECT_EQ(rule["from"][0]["podSelector"]["matchLabels"]["egressd.io/client"]
                  .as<std::string>(),
              "true");
  }

  // 4. The sidecar pods: nobody else reaches egressd's port 7070.
  const YAML::Node sidecar = by_name["example-app-ingress"];
  EXPECT_TRUE(Selects(sidecar["spec"]["podSelector"]["matchLabels"], app_labels));
  for (const YAML::Node& rule : sidecar["spec"]["ingress"]) {
    for (const YAML::Node& port : rule["ports"]) {
      EXPECT_NE(port["port"].as<int>(), kFetchPort);
    }
  }
}

// ./dev: a runfile once the root package exports it; until then found beside
// the source tree the Dockerfile's runfile links to.
std::string DevScriptPath() {
  const std::string runfile = RunfilePath("dev");
  if (fs::exists(runfile)) return runfile;
  std::error_code error;
  const fs::path dockerfile =
      fs::canonical(RunfilePath("deploy/Dockerfile"), error);
  if (error) return runfile;
  return (dockerfile.parent_path().parent_path() / "dev").string();
}

// Docker does not run here, so the Dockerfile must only chain steps that do:
// ./dev deps, the same bazel build as ./dev run, deploy/make_rootfs.sh.
TEST(DockerfileTest, BuildsLikeTheReadmeAndRunsAsTheManifestsExpect) {
  const std::string dockerfile = ReadFileOrEmpty(RunfilePath("deploy/Dockerfile"));
  const std::string readme = ReadFileOrEmpty(RunfilePath("README.md"));
  const std::string dev = ReadFileOrEmpty(DevScriptPath());
  ASSERT_FALSE(dockerfile.empty());
  ASSERT_FALSE(readme.empty());
  ASSERT_FALSE(dev.empty()) << "cannot find ./dev from " << DevScriptPath();
  EXPECT_THAT(dockerfile, HasSubstr("FROM debian:12 AS build"));
  // The packages: the README's own install step.
  EXPECT_THAT(readme, HasSubstr("./dev deps"));
  EXPECT_THAT(dockerfile, HasSubstr("RUN ./dev deps"));
  EXPECT_THAT(dockerfile, HasSubstr("FROM scratch"));

  // ./dev run's build line, e.g. "bazel build -c opt //server:egressd": each
  // of its words must be in the Dockerfile's bazel build line.
  std::string dev_build, docker_build;
  for (absl::string_view line : absl::StrSplit(dev, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (absl::StartsWith(line, "bazel build") &&
        absl::StrContains(line, "//server:egressd")) {
      dev_build = std::string(line);
    }
  }
  for (absl::string_view line : absl::StrSplit(dockerfile, '\n')) {
    if (absl::StrContains(line, "bazel build")) docker_build = std::string(line);
  }
  ASSERT_FALSE(dev_build.empty()) << "no bazel build line in ./dev";
  ASSERT_FALSE(docker_build.empty()) << "no bazel build line in the Dockerfile";
  for (absl::string_view word : absl::StrSplit(dev_build, ' ', absl::SkipEmpty())) {
    EXPECT_THAT(docker_build, HasSubstr(absl::StrCat(" ", word)))
        << "./dev builds with '" << dev_build << "', the Dockerfile with '"
        << docker_build << "'";
  }
  EXPECT_THAT(docker_build, HasSubstr("//server:egressctl"));

  EXPECT_THAT(dockerfile, HasSubstr(absl::StrCat("USER ", kImageUser, ":",
                                                 kImageUser)));
  EXPECT_THAT(dockerfile,
              HasSubstr("ENTRYPOINT [\"/usr/local/bin/egressd\", "
                        "\"--config=/etc/egressd/config.yaml\"]"));
  EXPECT_THAT(dockerfile, HasSubstr("deploy/make_rootfs.sh /rootfs"));
  EXPECT_THAT(dockerfile, HasSubstr("cp deploy/k8s/base/config.yaml "
                                    "/rootfs/etc/egressd/config.yaml"));
}

// The example Secret's keys, mounted as files and named by *_file fields,
// load and never show up in the effective configuration.
TEST(SecretExampleTest, KeysWorkAsSecretFiles) {
  const std::vector<YAML::Node> docs = YAML::LoadAllFromFile(
      RunfilePath("deploy/k8s/base/secret.example.yaml"));
  ASSERT_EQ(docs.size(), 1u);
  const YAML::Node data = docs[0]["stringData"];
  ASSERT_TRUE(data.IsMap());
  const std::string dir = MakeTempDir("secrets");
  std::vector<std::string> values;
  for (const auto& kv : data) {
    ASSERT_TRUE(WriteFile(absl::StrCat(dir, "/", kv.first.as<std::string>()),
                          kv.second.as<std::string>())
                    .ok());
    values.push_back(kv.second.as<std::string>());
  }
  const std::string config_path = absl::StrCat(dir, "/config.yaml");
  ASSERT_TRUE(WriteFile(config_path,
                        absl::StrCat("listeners:\n"
                                     "  admin_listen: 0.0.0.0:9901\n"
                                     "  admin_token_file: ",
                                     dir,
                                     "/admin-token\n"
                                     "proxy:\n"
                                     "  proxies:\n"
                                     "    - name: corp\n"
                                     "      url: http://proxy.corp.example:3128\n"
                                     "      username: egressd\n"
                                     "      password_file: ",
                                     dir, "/proxy-password\n"))
                  .ok());
  CommandResult check =
      RunCommand({RunfilePath("server/config/check_config"), config_path});
  ASSERT_EQ(check.exit_code, 0) << check.err;
  EXPECT_THAT(check.out, HasSubstr("admin_token: \"<redacted>\""));
  for (const std::string& value : values) {
    EXPECT_THAT(check.out, Not(HasSubstr(value)));
    EXPECT_THAT(check.err, Not(HasSubstr(value)));
  }
}

TEST(CheckConfigTest, ABadFileExitsOneNamingTheField) {
  const std::string path = absl::StrCat(MakeTempDir("bad"), "/config.yaml");
  ASSERT_TRUE(WriteFile(path, "timeouts:\n  shutdown_grace: soon\n").ok());
  CommandResult check =
      RunCommand({RunfilePath("server/config/check_config"), path});
  EXPECT_EQ(check.exit_code, 1);
  EXPECT_THAT(check.err, HasSubstr(absl::StrCat(
                             path, ":2: timeouts.shutdown_grace: 'soon' is "
                                   "not a duration")));
  EXPECT_TRUE(check.out.empty());
}

}  // namespace
}  // namespace egress::testing
