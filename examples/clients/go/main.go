// Command go runs the client scenario of examples/clients/README.md against a
// running stack: it reads the catalog through the gateway, makes the backend
// slow and then failing with backend.v1.ChaosService, and checks how the
// gateway answers (its cache, its circuit breaker, its retry hints).
//
//	CATALOG_GATEWAY=localhost:50051 CATALOG_BACKEND=localhost:50052 go run .
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	backendv1 "github.com/resilient-catalog/resilient-catalog/gen/go/backend/v1"
	catalogv1 "github.com/resilient-catalog/resilient-catalog/gen/go/catalog/v1"
	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// callTimeout is the deadline of every call unless a step says otherwise.
// Without a deadline a gRPC call may wait forever on a stuck server.
const callTimeout = 5 * time.Second

// stillOpen is what a stale first answer most likely means.
const stillOpen = "is the circuit still open from an earlier run? Wait 10 s, or reset it: see examples/clients/README.md"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "scenario failed:", err)
		os.Exit(1)
	}
	fmt.Println("scenario passed")
}

// scenario holds the two clients the steps use.
type scenario struct {
	catalog catalogv1.CatalogServiceClient // through the gateway
	chaos   backendv1.ChaosServiceClient   // on the backend itself
}

func run() (err error) {
	gateway := envOr("CATALOG_GATEWAY", "localhost:50051")
	backend := envOr("CATALOG_BACKEND", "localhost:50052")

	// NewClient does not connect yet: a server that is down shows up as
	// UNAVAILABLE on the first call, not here.
	gatewayConn, err := grpc.NewClient(gateway, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("gateway %s: %w", gateway, err)
	}
	defer gatewayConn.Close()
	backendConn, err := grpc.NewClient(backend, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("backend %s: %w", backend, err)
	}
	defer backendConn.Close()

	s := scenario{
		catalog: catalogv1.NewCatalogServiceClient(gatewayConn),
		chaos:   backendv1.NewChaosServiceClient(backendConn),
	}

	// Step 7 is deferred so that it runs also when a step fails: a backend
	// left slow or failing would break whoever uses the stack next.
	defer func() {
		if cerr := s.clearFaults(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("step 7, clean up: %w", cerr))
			return
		}
		fmt.Println("7. clean up: faults cleared")
	}()

	steps := []struct {
		name string
		run  func() (string, error)
	}{
		{"get a product", s.getProduct},
		{"page through the catalog", s.listProducts},
		{"an unknown id", s.unknownID},
		{"a deadline of its own", s.ownDeadline},
		{"the backend fails", s.backendFails},
		{"nothing cached, circuit open", s.circuitOpen},
	}
	for i, step := range steps {
		line, err := step.run()
		if err != nil {
			return fmt.Errorf("step %d, %s: %w", i+1, step.name, err)
		}
		fmt.Printf("%d. %s: %s\n", i+1, step.name, line)
	}
	return nil
}

// Step 1: a product through the gateway, answered by the backend.
func (s scenario) getProduct() (string, error) {
	var md callMetadata
	product, err := s.get("sku-1001", callTimeout, &md)
	if err != nil {
		return "", unexpected("the product", err)
	}
	price, err := formatMoney(product.GetPrice())
	if err != nil {
		return "", err
	}
	if got := md.get("x-cache"); got != "miss" {
		return "", fmt.Errorf("expected x-cache %q, got %q, x-circuit-state %q (%s)",
			"miss", got, md.get("x-circuit-state"), stillOpen)
	}
	return fmt.Sprintf("%q at %s (x-cache: miss)", product.GetTitle(), price), nil
}

// Step 2: every page of the catalog, in order.
func (s scenario) listProducts() (string, error) {
	// A token that never runs out would loop forever: give up well past the
	// size of any catalog this scenario runs against.
	const maxPages = 100
	var lastID, token string
	products, pages := 0, 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		resp, err := s.catalog.ListProducts(ctx, &catalogv1.ListProductsRequest{PageSize: 10, PageToken: token})
		cancel()
		if err != nil {
			return "", unexpected(fmt.Sprintf("page %d", pages+1), err)
		}
		pages++
		for _, p := range resp.GetProducts() {
			// Ids strictly increasing across pages also means no id twice.
			if products > 0 && p.GetId() <= lastID {
				return "", fmt.Errorf("expected ids in strictly increasing order, got %q after %q on page %d", p.GetId(), lastID, pages)
			}
			lastID = p.GetId()
			products++
		}
		token = resp.GetNextPageToken()
		if token == "" {
			break
		}
		if pages == maxPages {
			return "", fmt.Errorf("expected the last page within %d pages, got a next_page_token still", maxPages)
		}
	}
	if pages < 2 {
		return "", fmt.Errorf("expected more than one page of 10, got %d page(s) with %d products", pages, products)
	}
	return fmt.Sprintf("%d products in %d pages", products, pages), nil
}

// Step 3: an id that does not exist is an error, not an empty product.
func (s scenario) unknownID() (string, error) {
	_, err := s.get("sku-does-not-exist", callTimeout, nil)
	if err := expectCode(err, codes.NotFound); err != nil {
		return "", err
	}
	return "NOT_FOUND", nil
}

// Step 4: the caller's own short deadline ends the call, however slow the
// backend is.
func (s scenario) ownDeadline() (string, error) {
	if err := s.setFaults(&backendv1.SetFaultsRequest{LatencyMs: 3000}); err != nil {
		return "", err
	}
	start := time.Now()
	// sku-1003 was not asked for before: no cached answer can come back.
	_, err := s.get("sku-1003", 500*time.Millisecond, nil)
	took := time.Since(start)
	if err := expectCode(err, codes.DeadlineExceeded); err != nil {
		return "", err
	}
	// Three times the deadline leaves room for a slow machine, and is still
	// half of what waiting for the backend would take.
	if took >= 1500*time.Millisecond {
		return "", fmt.Errorf("expected the call to end well before the backend's 3 s, got %v", took)
	}
	return fmt.Sprintf("DEADLINE_EXCEEDED after %v", took.Round(time.Millisecond)), nil
}

// Step 5: the backend fails on every call; the gateway answers from its
// last-known-good cache until its circuit opens.
func (s scenario) backendFails() (string, error) {
	if err := s.setFaults(&backendv1.SetFaultsRequest{ErrorRate: 1}); err != nil {
		return "", err
	}
	const maxCalls = 20
	state := ""
	for call := 1; call <= maxCalls; call++ {
		var md callMetadata
		product, err := s.get("sku-1001", callTimeout, &md)
		if err != nil {
			return "", unexpected(fmt.Sprintf("the product from the cache (call %d)", call), err)
		}
		if product.GetId() != "sku-1001" {
			return "", fmt.Errorf("expected product sku-1001 (call %d), got %q", call, product.GetId())
		}
		if got := md.get("x-cache"); got != "stale" {
			return "", fmt.Errorf("expected x-cache %q (call %d), got %q", "stale", call, got)
		}
		age := md.get("x-cache-age")
		if _, err := strconv.ParseUint(age, 10, 64); err != nil {
			return "", fmt.Errorf("expected x-cache-age in whole seconds (call %d), got %q", call, age)
		}
		if state = md.get("x-circuit-state"); state == "open" {
			return fmt.Sprintf("circuit open after %d calls, last answer x-cache: stale, x-cache-age: %s, x-circuit-state: open", call, age), nil
		}
	}
	return "", fmt.Errorf("expected x-circuit-state %q within %d calls, got %q still", "open", maxCalls, state)
}

// Step 6: with the circuit open and nothing cached, the gateway refuses at
// once and says when to try again.
func (s scenario) circuitOpen() (string, error) {
	_, err := s.get("sku-never-cached", callTimeout, nil)
	if err := expectCode(err, codes.Unavailable); err != nil {
		return "", err
	}
	// The details come from the grpc-status-details-bin trailer, a
	// google.rpc.Status; errdetails registers the types they may hold.
	st, _ := status.FromError(err)
	for _, detail := range st.Details() {
		if info, ok := detail.(*errdetails.RetryInfo); ok {
			delay := info.GetRetryDelay().AsDuration()
			if delay <= 0 {
				return "", fmt.Errorf("expected a RetryInfo retry_delay above zero, got %v", delay)
			}
			return fmt.Sprintf("UNAVAILABLE, retry in %v", delay.Round(time.Millisecond)), nil
		}
	}
	return "", fmt.Errorf("expected a google.rpc.RetryInfo in the status details, got %v", st.Details())
}

// Step 7: an empty SetFaults clears every fault.
func (s scenario) clearFaults() error {
	return s.setFaults(&backendv1.SetFaultsRequest{})
}

// get calls GetProduct with a deadline of its own, collecting the response
// metadata into md unless md is nil.
func (s scenario) get(id string, timeout time.Duration, md *callMetadata) (*catalogv1.Product, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var opts []grpc.CallOption
	if md != nil {
		opts = md.callOptions()
	}
	resp, err := s.catalog.GetProduct(ctx, &catalogv1.GetProductRequest{Id: id}, opts...)
	if err != nil {
		return nil, err
	}
	if resp.GetProduct() == nil {
		return nil, fmt.Errorf("expected a product, got an answer without one")
	}
	return resp.GetProduct(), nil
}

func (s scenario) setFaults(req *backendv1.SetFaultsRequest) error {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if _, err := s.chaos.SetFaults(ctx, req); err != nil {
		return fmt.Errorf("SetFaults on the backend: %w", err)
	}
	return nil
}

// callMetadata collects the response metadata of one call. The gateway sends
// x-cache, x-cache-age and x-circuit-state as headers when the call
// succeeds; when it fails they may come in the trailers instead (or in a
// trailers-only answer), so look in both.
type callMetadata struct {
	header, trailer metadata.MD
}

func (m *callMetadata) callOptions() []grpc.CallOption {
	return []grpc.CallOption{grpc.Header(&m.header), grpc.Trailer(&m.trailer)}
}

// get returns the first value of key in the headers, else in the trailers,
// else "".
func (m *callMetadata) get(key string) string {
	for _, md := range []metadata.MD{m.header, m.trailer} {
		if v := md.Get(key); len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// formatMoney renders a Money as a decimal amount with its currency, for
// example "12.34 USD" for units 12 and nanos 340000000. It uses integers
// only: a float64 cannot hold every amount exactly.
func formatMoney(m *catalogv1.Money) (string, error) {
	if m == nil {
		return "", errors.New("expected a price, got none")
	}
	units, nanos := m.GetUnits(), int64(m.GetNanos())
	if nanos <= -1e9 || nanos >= 1e9 || (units > 0 && nanos < 0) || (units < 0 && nanos > 0) {
		return "", fmt.Errorf("expected a valid Money, got units %d and nanos %d", units, nanos)
	}
	sign := ""
	// Negating as uint64 is exact even for the smallest int64.
	whole := uint64(units)
	if units < 0 || nanos < 0 {
		sign = "-"
		whole = -whole
		nanos = -nanos
	}
	// Nine digits of nanos without the trailing zeros, but at least the two
	// of cents: "12.30", "12.345".
	frac := strings.TrimRight(fmt.Sprintf("%09d", nanos), "0")
	for len(frac) < 2 {
		frac += "0"
	}
	return fmt.Sprintf("%s%d.%s %s", sign, whole, frac, m.GetCurrencyCode()), nil
}

// expectCode checks that a call failed with the status code want.
func expectCode(err error, want codes.Code) error {
	if status.Code(err) == want {
		return nil
	}
	return unexpected(codeName(want), err)
}

// unexpected describes an answer that was not the one expected: a gRPC
// status by its code and message, or the fact that the call succeeded.
func unexpected(want string, err error) error {
	if err == nil {
		return fmt.Errorf("expected %s, got a success", want)
	}
	if st, ok := status.FromError(err); ok {
		return fmt.Errorf("expected %s, got %s: %s", want, codeName(st.Code()), st.Message())
	}
	return err // not a gRPC status: it says what was wrong already
}

// codeName spells a status code as the gRPC specification does, NOT_FOUND
// rather than grpc-go's NotFound.
func codeName(c codes.Code) string {
	return rpccode.Code(c).String()
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
