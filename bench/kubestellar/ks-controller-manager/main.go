// ks-controller-manager runs KubeStellar's binding controller and status controller (its
// pkg/binding and pkg/status, unchanged) together, wired as KubeStellar's own
// cmd/controller-manager/main.go wires them, against a WDS and an ITS given as two
// kubeconfig files. KubeStellar's controller-manager finds the WDS and ITS through KubeFlex
// objects; this main takes the kubeconfigs instead and sets one client rate limit on both.
//
//	ks-controller-manager --wds-kubeconfig WDS --its-kubeconfig ITS [--wds-name wds1]
//	    [--qps 50] [--burst 100] [--controllers binding,status] [--api-groups ...]
//
// What is KubeStellar's and kept as its main does it (cmd/controller-manager/main.go):
// client metrics registered in the legacy registry; the binding controller created with a
// workload-event relay; its EnsureCRDs (the five KubeStellar CRDs in the WDS) and
// AppendKSResources; the status controller, when started, created only once the ITS serves
// control.kubestellar.io/v1alpha1 workstatuses (util.CheckWorkStatusPresence, polled every
// 15 s), with the binding controller's BindingPolicyResolver, the relay then forwarding the
// binding controller's workload events to it; both started with 4 workers, the binding
// controller first, sharing the listers channel (the binding controller sends its listers
// once its workload informers synced, the status controller waits for them).
//
// What differs: the kubeconfigs (instead of KubeFlex lookups), one --qps/--burst for both
// spaces (KubeStellar: --wds-qps/--wds-burst/--its-qps/--its-burst, default 5/10), and the
// metrics/health/pprof endpoints are served only when --metrics-bind-address and
// --pprof-bind-address are given (KubeStellar serves them on :8080, :8081, :8082 always).
//
// Built against a KubeStellar source tree by bench/kubestellar/build.sh.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	// As KubeStellar's controller-manager: client auth plugins, and client-go's and the
	// version's metrics registered in the legacy registry.
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"

	clientopts "github.com/kubestellar/kubestellar/options"
	"github.com/kubestellar/kubestellar/pkg/binding"
	ksctlr "github.com/kubestellar/kubestellar/pkg/controller"
	ksmetrics "github.com/kubestellar/kubestellar/pkg/metrics"
	"github.com/kubestellar/kubestellar/pkg/status"
	"github.com/kubestellar/kubestellar/pkg/util"
)

// workers: the number of workers of each controller, as KubeStellar's controller-manager.
const workers = 4

func restConfig(path string, qps float64, burst int) (*rest.Config, error) {
	config, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig %s: %w", path, err)
	}
	// As clientopts.ClientLimits.LimitConfig.
	config.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(float32(qps), burst)
	return config, nil
}

func main() {
	processOpts := clientopts.ProcessOptions{}
	var wdsPath, itsPath, wdsName, allowedGroupsString string
	var qps float64
	var burst int
	var controllers []string
	pflag.StringVar(&wdsPath, "wds-kubeconfig", "", "kubeconfig of the WDS")
	pflag.StringVar(&itsPath, "its-kubeconfig", "", "kubeconfig of the ITS")
	pflag.StringVar(&wdsName, "wds-name", "wds1", "the WDS's name (Bindings' and WorkStatuses' transport.kubestellar.io/originWdsName)")
	pflag.Float64Var(&qps, "qps", 50, "client QPS limit, for each of the WDS and ITS clients")
	pflag.IntVar(&burst, "burst", 100, "client burst, for each of the WDS and ITS clients")
	pflag.StringVar(&allowedGroupsString, "api-groups", "", "list of allowed api groups, comma separated. Empty string means all API groups are allowed")
	pflag.StringSliceVar(&controllers, "controllers", []string{}, "list of controllers to be started by the controller manager, lower case and comma separated, e.g. 'binding,status'. If not specified (or empty list specified), all controllers are started. Currently available controllers are 'binding' and 'status'.")
	processOpts.AddToFlags(pflag.CommandLine)
	klog.InitFlags(nil)
	pflag.CommandLine.AddGoFlagSet(flag.CommandLine)
	pflag.Parse()
	if wdsPath == "" || itsPath == "" {
		fmt.Fprintln(os.Stderr, "ks-controller-manager: --wds-kubeconfig and --its-kubeconfig are required")
		os.Exit(2)
	}
	ctx, _ := ksctlr.InitialContext()
	logger := klog.FromContext(ctx)
	ctrl.SetLogger(logger)
	setupLog := logger.WithName("setup")

	pflag.VisitAll(func(flg *pflag.Flag) {
		setupLog.Info("Command line flag", "name", flg.Name, "value", flg.Value)
	})

	allowedGroupsSet := util.ParseAPIGroupsString(allowedGroupsString)

	ctlrsToStart := sets.New(controllers...)
	if !sets.New(
		strings.ToLower(binding.ControllerName),
		strings.ToLower(status.ControllerName),
	).IsSuperset(ctlrsToStart) {
		setupLog.Error(fmt.Errorf("unknown controller specified"), "'controllers' flag has incorrect value")
		os.Exit(1)
	}

	if processOpts.MetricsBindAddr != "" && processOpts.PProfBindAddr != "" {
		ksctlr.Start(ctx, processOpts)
	}

	spacesClientMetrics := ksmetrics.NewMultiSpaceClientMetrics()
	ksmetrics.MustRegister(legacyregistry.Register, spacesClientMetrics)
	wdsClientMetrics := spacesClientMetrics.MetricsForSpace("wds")
	itsClientMetrics := spacesClientMetrics.MetricsForSpace("its")

	wdsRestConfig, err := restConfig(wdsPath, qps, burst)
	if err != nil {
		setupLog.Error(err, "unable to get WDS kubeconfig")
		os.Exit(1)
	}
	setupLog.Info("Got config for WDS", "name", wdsName)
	itsRestConfig, err := restConfig(itsPath, qps, burst)
	if err != nil {
		setupLog.Error(err, "unable to get ITS kubeconfig")
		os.Exit(1)
	}
	setupLog.Info("Got config for ITS")

	workloadEventRelay := &workloadEventRelay{}

	bindingController, err := binding.NewController(logger, wdsClientMetrics, itsClientMetrics, wdsRestConfig, itsRestConfig, wdsName, allowedGroupsSet, workloadEventRelay)
	if err != nil {
		setupLog.Error(err, "unable to create binding controller")
		os.Exit(1)
	}

	if err := bindingController.EnsureCRDs(ctx); err != nil {
		setupLog.Error(err, "error installing the CRDs")
		os.Exit(1)
	}

	if err := bindingController.AppendKSResources(ctx); err != nil {
		setupLog.Error(err, "error appending KubeStellar resources to discovered lists")
		os.Exit(1)
	}

	startBindingController := len(ctlrsToStart) == 0 || ctlrsToStart.Has(strings.ToLower(binding.ControllerName))
	startStatusCtlr := len(ctlrsToStart) == 0 || ctlrsToStart.Has(strings.ToLower(status.ControllerName))
	var statusController *status.Controller

	if startStatusCtlr {
		if !startBindingController {
			setupLog.Error(nil, "Status controller does not work without binding controller")
			os.Exit(1)
		}
		// check if status add-on present before starting the status controller
		for i := 1; true; i++ {
			if util.CheckWorkStatusPresence(itsRestConfig) {
				break
			}
			if (i & (i - 1)) == 0 {
				setupLog.Info("Not creating status controller yet because WorkStatus is not defined in the ITS")
			}
			time.Sleep(15 * time.Second)
		}
		setupLog.Info("Creating controller", "name", status.ControllerName)
		statusController, err = status.NewController(logger, wdsClientMetrics, itsClientMetrics, wdsRestConfig, itsRestConfig, wdsName,
			bindingController.GetBindingPolicyResolver())
		if err != nil {
			setupLog.Error(err, "unable to create status controller")
			os.Exit(1)
		}
		workloadEventRelay.statusController = statusController
	} else {
		setupLog.Info("Not creating status controller")
	}

	cListers := make(chan interface{}, 1)

	if startBindingController {
		setupLog.Info("Starting controller", "name", binding.ControllerName)
		if err := bindingController.Start(ctx, workers, cListers); err != nil {
			setupLog.Error(err, "error starting the binding controller")
			os.Exit(1)
		}
	}

	if startStatusCtlr {
		setupLog.Info("Starting controller", "name", status.ControllerName)
		if err := statusController.Start(ctx, workers, cListers); err != nil {
			setupLog.Error(err, "error starting the status controller")
			os.Exit(1)
		}
	}

	<-ctx.Done()
}

// workloadEventRelay implements binding.WorkloadEventHandler and relays the notifications
// to the status controller (as in KubeStellar's controller-manager).
type workloadEventRelay struct {
	statusController *status.Controller
}

var _ binding.WorkloadEventHandler = &workloadEventRelay{}

func (wer *workloadEventRelay) HandleWorkloadObjectEvent(gvr schema.GroupVersionResource, oldObj, obj util.MRObject, eventType binding.WorkloadEventType, wasDeletedFinalStateUnknown bool) {
	if wer.statusController != nil {
		wer.statusController.HandleWorkloadObjectEvent(gvr, oldObj, obj, eventType, wasDeletedFinalStateUnknown)
	}
}
