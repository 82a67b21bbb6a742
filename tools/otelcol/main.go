// Program otelcol-redline-peer is the otelcol-contrib collector that Redline's
// parity suite and side-by-side benchmarks run beside Redline. It is a test and
// bench peer only: nothing in Redline depends on it.
package main

import (
	"log"
	"os"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	envprovider "go.opentelemetry.io/collector/confmap/provider/envprovider"
	fileprovider "go.opentelemetry.io/collector/confmap/provider/fileprovider"
	yamlprovider "go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/otelcol"
)

func main() {
	// Not an otelcol command: the parity suite's list of every key each component decodes.
	if len(os.Args) == 2 && os.Args[1] == "config-keys" {
		runConfigKeys()
		return
	}

	info := component.BuildInfo{
		Command:     "otelcol-redline-peer",
		Description: "otelcol-contrib components pinned for Redline's parity suite",
		Version:     "0.161.0",
	}

	settings := otelcol.CollectorSettings{
		BuildInfo: info,
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{
					envprovider.NewFactory(),
					fileprovider.NewFactory(),
					yamlprovider.NewFactory(),
				},
				DefaultScheme: "env",
			},
		},
	}

	if err := otelcol.NewCommand(settings).Execute(); err != nil {
		log.Fatalf("collector server run finished with error: %v", err)
	}
}
