// ks-binding runs KubeStellar's binding controller (its pkg/binding, unchanged) against a
// WDS and an ITS given as two kubeconfig files, for side-by-side benchmarks with Bindery.
// KubeStellar's own controller-manager finds the WDS and ITS through KubeFlex objects;
// this main takes the kubeconfigs instead and sets the same client rate limits on both.
//
//	ks-binding --wds-kubeconfig WDS --its-kubeconfig ITS [--qps 50] [--burst 100] [--workers 4]
//
// Built against a KubeStellar source tree by bench/kubestellar/build.sh.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	"github.com/kubestellar/kubestellar/pkg/binding"
	ksmetrics "github.com/kubestellar/kubestellar/pkg/metrics"
	"github.com/kubestellar/kubestellar/pkg/util"
)

// ignoreWorkloadEvents is the WorkloadEventHandler: the status controller, which would
// consume these, is not run.
type ignoreWorkloadEvents struct{}

func (ignoreWorkloadEvents) HandleWorkloadObjectEvent(schema.GroupVersionResource, util.MRObject, util.MRObject, binding.WorkloadEventType, bool) {
}

func restConfig(path string, qps float64, burst int) (*rest.Config, error) {
	config, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig %s: %w", path, err)
	}
	config.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(float32(qps), burst)
	return config, nil
}

func main() {
	wdsPath := flag.String("wds-kubeconfig", "", "kubeconfig of the WDS")
	itsPath := flag.String("its-kubeconfig", "", "kubeconfig of the ITS")
	wdsName := flag.String("wds-name", "wds1", "the WDS's name (KubeStellar labels Bindings' origin with it)")
	qps := flag.Float64("qps", 50, "client QPS limit, for each of the WDS and ITS clients")
	burst := flag.Int("burst", 100, "client burst, for each of the WDS and ITS clients")
	workers := flag.Int("workers", 4, "the controller's workers (KubeStellar's controller-manager uses 4)")
	apiGroups := flag.String("api-groups", "", "allowed API groups, comma separated (empty: all), as KubeStellar's --api-groups")
	klog.InitFlags(nil)
	flag.Parse()
	if *wdsPath == "" || *itsPath == "" {
		fmt.Fprintln(os.Stderr, "ks-binding: --wds-kubeconfig and --its-kubeconfig are required")
		os.Exit(2)
	}
	logger := klog.Background().WithName("ks-binding")
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	ctx = klog.NewContext(ctx, logger)

	wds, err := restConfig(*wdsPath, *qps, *burst)
	if err != nil {
		logger.Error(err, "WDS")
		os.Exit(1)
	}
	its, err := restConfig(*itsPath, *qps, *burst)
	if err != nil {
		logger.Error(err, "ITS")
		os.Exit(1)
	}
	metrics := ksmetrics.NewMultiSpaceClientMetrics()
	// Registering creates its metric vectors: as KubeStellar's controller-manager does.
	ksmetrics.MustRegister(legacyregistry.Register, metrics)
	controller, err := binding.NewController(logger, metrics.MetricsForSpace("wds"), metrics.MetricsForSpace("its"),
		wds, its, *wdsName, util.ParseAPIGroupsString(*apiGroups), ignoreWorkloadEvents{})
	if err != nil {
		logger.Error(err, "creating the binding controller")
		os.Exit(1)
	}
	if err := controller.EnsureCRDs(ctx); err != nil {
		logger.Error(err, "installing the CRDs")
		os.Exit(1)
	}
	if err := controller.AppendKSResources(ctx); err != nil {
		logger.Error(err, "appending KubeStellar's resources to the discovered lists")
		os.Exit(1)
	}
	listers := make(chan interface{}, 1)
	logger.Info("starting KubeStellar's binding controller", "workers", *workers, "qps", *qps, "burst", *burst)
	if err := controller.Start(ctx, *workers, listers); err != nil {
		logger.Error(err, "running the binding controller")
		os.Exit(1)
	}
	<-ctx.Done()
}
