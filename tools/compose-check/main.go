// Command compose-check checks the compose stack without a Docker engine.
//
// It loads the compose files with compose-go, the library Docker Compose
// itself loads them with (schema validation, interpolation, merging of
// overlays), and then checks what Compose would only find out while
// running the stack:
//
//   - every ${VARIABLE} has a default, so `docker compose up` needs no
//     environment;
//   - every image is pinned to a version tag (never `latest`);
//   - every path exists: build contexts, Dockerfiles, bind-mounted files;
//   - every Dockerfile parses with BuildKit's own parser and linter, and has
//     the stage a service builds;
//   - a service that waits for a dependency with a health check waits for
//     it to be healthy;
//   - only the ports named by -public listen on every interface of the
//     host; the others are bound to its loopback;
//   - the Prometheus configuration given with -prometheus loads as
//     Prometheus loads it (what `promtool check config` does), and scrapes
//     only services of the compose file;
//   - every query of the Grafana dashboard given with -dashboard parses
//     as PromQL.
//
// With -env-json, it prints each service's resolved environment, command,
// health check and bind mounts as JSON, for scripts/compose-check.py to start the services
// the way the compose file does.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	dockerparser "github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	promql "github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v4"
)

// resolved is what -env-json prints for one service: what it takes to
// start it as Compose would.
type resolved struct {
	Image       string            `json:"image"`
	Command     []string          `json:"command"`
	Environment map[string]string `json:"environment"`
	// The health check's command (the part after CMD), if it has one.
	Healthcheck []string `json:"healthcheck"`
	// The bind mounts: a host path, and where the container sees it.
	Binds []bind `json:"binds"`
}

type bind struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

func main() {
	root := flag.String("C", ".", "the directory the compose files are in")
	public := flag.String("public", "", "comma-separated service:port pairs that may listen on every interface of the host")
	prometheus := flag.String("prometheus", "", "a Prometheus configuration file to check")
	dashboard := flag.String("dashboard", "", "a Grafana dashboard (JSON) whose queries to check")
	envJSON := flag.Bool("env-json", false, "print each service's environment, command, health check and bind mounts as JSON")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: compose-check [-C dir] [-public service:port,...] [-prometheus file] [-dashboard file] [-env-json] docker-compose.yml [overlay.yml...]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}

	var problems []string
	report := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}

	files := make([]string, flag.NArg())
	for i, file := range flag.Args() {
		files[i] = filepath.Join(*root, file)
		checkVariables(files[i], report)
	}

	project, err := load(files, *root)
	if err != nil {
		fmt.Fprintf(os.Stderr, "compose-check: %v\n", err)
		os.Exit(1)
	}
	allowed := map[string]bool{}
	for _, pair := range strings.Split(*public, ",") {
		if pair != "" {
			allowed[pair] = true
		}
	}
	for _, name := range project.ServiceNames() {
		service := project.Services[name]
		checkImage(service, report)
		checkBuild(service, report)
		checkVolumes(service, report)
		checkDependencies(project, service, report)
		checkPorts(service, allowed, report)
	}

	if *prometheus != "" {
		checkPrometheus(filepath.Join(*root, *prometheus), project, report)
	}
	if *dashboard != "" {
		checkDashboard(filepath.Join(*root, *dashboard), report)
	}

	if len(problems) > 0 {
		for _, problem := range problems {
			fmt.Fprintf(os.Stderr, "compose-check: %s\n", problem)
		}
		os.Exit(1)
	}
	if *envJSON {
		printResolved(project)
		return
	}
	fmt.Printf("compose-check: %s: %d services valid: %s\n",
		strings.Join(flag.Args(), " + "), len(project.Services), strings.Join(project.ServiceNames(), ", "))
}

// load reads the compose files as `docker compose config` does, with no
// environment variables and no .env file: what a fresh checkout gets.
func load(files []string, root string) (*types.Project, error) {
	options, err := cli.NewProjectOptions(files,
		cli.WithWorkingDirectory(root),
		cli.WithEnv([]string{}),
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		return nil, err
	}
	return cli.ProjectFromOptions(context.Background(), options)
}

// checkVariables reports every ${VARIABLE} of file that has no default
// and is not required on purpose (${VARIABLE:?message}).
func checkVariables(file string, report func(string, ...any)) {
	source, err := os.ReadFile(file)
	if err != nil {
		report("%v", err)
		return
	}
	var model map[string]any
	if err := yaml.Unmarshal(source, &model); err != nil {
		report("%s: %v", file, err)
		return
	}
	for name, variable := range template.ExtractVariables(model, template.DefaultPattern) {
		if variable.DefaultValue == "" && !variable.Required {
			report("%s: ${%s} has no default: a fresh checkout would run without it", filepath.Base(file), name)
		}
	}
}

// checkImage reports an image that is not pinned to a version tag.
func checkImage(service types.ServiceConfig, report func(string, ...any)) {
	image := service.Image
	if image == "" {
		report("service %s: no image: name the image it runs or builds, with a version tag", service.Name)
		return
	}
	if strings.Contains(image, "@sha256:") {
		return
	}
	lastPart := image[strings.LastIndex(image, "/")+1:]
	tag := ""
	if i := strings.LastIndex(lastPart, ":"); i >= 0 {
		tag = lastPart[i+1:]
	}
	if tag == "" || tag == "latest" {
		report("service %s: image %q is not pinned to a version tag", service.Name, image)
	}
}

// checkBuild reports a build context, Dockerfile or stage that is missing,
// and a Dockerfile that BuildKit's parser or linter refuses.
func checkBuild(service types.ServiceConfig, report func(string, ...any)) {
	build := service.Build
	if build == nil {
		return
	}
	if info, err := os.Stat(build.Context); err != nil || !info.IsDir() {
		report("service %s: build context %s is not a directory", service.Name, build.Context)
		return
	}
	dockerfile := build.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	if !filepath.IsAbs(dockerfile) {
		dockerfile = filepath.Join(build.Context, dockerfile)
	}
	source, err := os.Open(dockerfile)
	if err != nil {
		report("service %s: %v", service.Name, err)
		return
	}
	defer source.Close()
	ast, err := dockerparser.Parse(source)
	if err != nil {
		report("service %s: %s: %v", service.Name, dockerfile, err)
		return
	}
	for _, warning := range ast.Warnings {
		report("service %s: %s: %s", service.Name, dockerfile, warning.Short)
	}
	lint := linter.New(&linter.Config{
		Warn: func(rule, description, url, message string, location []dockerparser.Range) {
			line := 0
			if len(location) > 0 {
				line = location[0].Start.Line
			}
			report("service %s: %s:%d: %s: %s", service.Name, dockerfile, line, rule, message)
		},
	})
	stages, _, err := instructions.Parse(ast.AST, lint)
	if err != nil {
		report("service %s: %s: %v", service.Name, dockerfile, err)
		return
	}
	if build.Target == "" {
		return
	}
	for _, stage := range stages {
		if stage.Name == build.Target {
			return
		}
	}
	report("service %s: %s has no stage %q", service.Name, dockerfile, build.Target)
}

// checkVolumes reports a bind mount whose source does not exist: Docker
// would create an empty directory in its place, and the service would run
// without its configuration.
func checkVolumes(service types.ServiceConfig, report func(string, ...any)) {
	for _, volume := range service.Volumes {
		if volume.Type != types.VolumeTypeBind {
			continue
		}
		if _, err := os.Stat(volume.Source); err != nil {
			report("service %s: bind mount source %s does not exist", service.Name, volume.Source)
		}
	}
}

// checkDependencies reports a dependency on a service that has a health
// check, which does not wait for it to be healthy.
func checkDependencies(project *types.Project, service types.ServiceConfig, report func(string, ...any)) {
	for name, dependency := range service.DependsOn {
		target, ok := project.Services[name]
		if !ok {
			report("service %s: depends on %s, which is not a service", service.Name, name)
			continue
		}
		healthy := target.HealthCheck != nil && !target.HealthCheck.Disable
		if healthy && dependency.Condition != types.ServiceConditionHealthy {
			report("service %s: depends on %s with condition %s; it has a health check, so wait for %s",
				service.Name, name, dependency.Condition, types.ServiceConditionHealthy)
		}
		if !healthy && dependency.Condition == types.ServiceConditionHealthy {
			report("service %s: waits for %s to be healthy, but %s has no health check", service.Name, name, name)
		}
	}
}

// checkPorts reports a port published on every interface of the host that
// -public does not allow.
func checkPorts(service types.ServiceConfig, allowed map[string]bool, report func(string, ...any)) {
	for _, published := range service.Ports {
		if published.HostIP == "127.0.0.1" || published.HostIP == "::1" {
			continue
		}
		if !allowed[fmt.Sprintf("%s:%d", service.Name, published.Target)] {
			report("service %s: port %d is published on every interface of the host; bind it to 127.0.0.1",
				service.Name, published.Target)
		}
	}
}

// checkPrometheus loads file as Prometheus does, and reports a scrape
// target that is not a service of the project.
func checkPrometheus(file string, project *types.Project, report func(string, ...any)) {
	config, err := promconfig.LoadFile(file, false, slog.New(slog.DiscardHandler))
	if err != nil {
		report("%s: %v", filepath.Base(file), err)
		return
	}
	for _, job := range config.ScrapeConfigs {
		for _, sd := range job.ServiceDiscoveryConfigs {
			static, ok := sd.(discovery.StaticConfig)
			if !ok {
				continue
			}
			for _, group := range static {
				for _, target := range group.Targets {
					address := string(target[model.AddressLabel])
					host, _, err := net.SplitHostPort(address)
					if err != nil {
						report("%s: job %s: target %q: %v", filepath.Base(file), job.JobName, address, err)
						continue
					}
					if _, ok := project.Services[host]; !ok {
						report("%s: job %s: target %s is not a service of the compose file", filepath.Base(file), job.JobName, address)
					}
				}
			}
		}
	}
}

// checkDashboard reports a query of a Grafana dashboard that does not
// parse as PromQL, with Grafana's $__rate_interval and $__interval
// standing for a duration.
func checkDashboard(file string, report func(string, ...any)) {
	source, err := os.ReadFile(file)
	if err != nil {
		report("%v", err)
		return
	}
	var dashboard struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(source, &dashboard); err != nil {
		report("%s: %v", filepath.Base(file), err)
		return
	}
	grafana := strings.NewReplacer("$__rate_interval", "1m", "$__interval", "15s", "$__range", "1h")
	for _, panel := range dashboard.Panels {
		if len(panel.Targets) == 0 {
			report("%s: panel %q has no query", filepath.Base(file), panel.Title)
		}
		for _, target := range panel.Targets {
			if _, err := promql.ParseExpr(grafana.Replace(target.Expr)); err != nil {
				report("%s: panel %q: %v", filepath.Base(file), panel.Title, err)
			}
		}
	}
}

func printResolved(project *types.Project) {
	services := map[string]resolved{}
	for name, service := range project.Services {
		environment := map[string]string{}
		for key, value := range service.Environment {
			if value != nil {
				environment[key] = *value
			}
		}
		command := []string(service.Command)
		if command == nil {
			command = []string{}
		}
		healthcheck := []string{}
		if check := service.HealthCheck; check != nil && !check.Disable && len(check.Test) > 1 && check.Test[0] == "CMD" {
			healthcheck = check.Test[1:]
		}
		binds := []bind{}
		for _, volume := range service.Volumes {
			if volume.Type == types.VolumeTypeBind {
				binds = append(binds, bind{volume.Source, volume.Target})
			}
		}
		sort.Slice(binds, func(i, j int) bool { return binds[i].Target < binds[j].Target })
		services[name] = resolved{service.Image, command, environment, healthcheck, binds}
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetIndent("", "  ")
	if err := encoder.Encode(services); err != nil {
		fmt.Fprintf(os.Stderr, "compose-check: %v\n", err)
		os.Exit(1)
	}
}
