// The `config-keys` command: every configuration key each component of this peer
// decodes, found by walking its default config's type the way confmap decodes it
// (mapstructure tags, `,squash`, optional sections). Redline's parity suite reads it
// to check that Redline knows every key otelcol knows: it either implements a key or
// refuses it as a setting it does not support yet, and never calls it unknown.

package main

import (
	"encoding"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
)

// configKey is one key path of a component's config. A path segment "[]" stands
// for the elements of a list, "*" for the values of a map keyed by the user.
type configKey struct {
	Path []string `json:"path"`
	// Kind is the value's shape: string, bool, int, float, duration, list, map,
	// or any (decoded by the component itself).
	Kind string `json:"kind"`
}

var (
	durationType        = reflect.TypeOf(time.Duration(0))
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

func printConfigKeys() error {
	factories, err := components()
	if err != nil {
		return err
	}
	out := map[string]map[string][]configKey{
		"receivers":  {},
		"processors": {},
		"exporters":  {},
		"connectors": {},
		"extensions": {},
	}
	add := func(kind string, typ component.Type, cfg component.Config) {
		keys := []configKey{}
		walkConfig(reflect.TypeOf(cfg), nil, map[reflect.Type]bool{}, &keys)
		sort.Slice(keys, func(i, j int) bool {
			return strings.Join(keys[i].Path, ".") < strings.Join(keys[j].Path, ".")
		})
		out[kind][typ.String()] = keys
	}
	for typ, f := range factories.Receivers {
		add("receivers", typ, f.CreateDefaultConfig())
	}
	for typ, f := range factories.Processors {
		add("processors", typ, f.CreateDefaultConfig())
	}
	for typ, f := range factories.Exporters {
		add("exporters", typ, f.CreateDefaultConfig())
	}
	for typ, f := range factories.Connectors {
		add("connectors", typ, f.CreateDefaultConfig())
	}
	for typ, f := range factories.Extensions {
		add("extensions", typ, f.CreateDefaultConfig())
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	return enc.Encode(out)
}

// walkConfig appends the keys under path of a value of type t. seen stops the walk
// at a type that contains itself.
func walkConfig(t reflect.Type, path []string, seen map[reflect.Type]bool, keys *[]configKey) {
	leaf := func(kind string) {
		if len(path) > 0 {
			*keys = append(*keys, configKey{Path: append([]string(nil), path...), Kind: kind})
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType {
		leaf("duration")
		return
	}
	// A type that decodes itself from text (ids, enums, compression names) is one value.
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		leaf("string")
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if inner, ok := optionalValue(t); ok {
			walkConfig(inner, path, seen, keys)
			return
		}
		if seen[t] {
			leaf("any")
			return
		}
		seen[t] = true
		defer delete(seen, t)
		if len(path) > 0 {
			// The section itself is a key: `tls:` alone is a setting.
			leaf("map")
		}
		for i := 0; i < t.NumField(); i++ {
			field := t.Field(i)
			name, squash, skip := mapstructureName(field)
			if skip {
				continue
			}
			if squash {
				walkConfig(field.Type, path, seen, keys)
				continue
			}
			walkConfig(field.Type, append(path, name), seen, keys)
		}
	case reflect.Slice, reflect.Array:
		leaf("list")
		if hasFields(t.Elem()) {
			walkConfig(t.Elem(), append(path, "[]"), seen, keys)
		}
	case reflect.Map:
		leaf("map")
		if hasFields(t.Elem()) {
			walkConfig(t.Elem(), append(path, "*"), seen, keys)
		}
	case reflect.Bool:
		leaf("bool")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		leaf("int")
	case reflect.Float32, reflect.Float64:
		leaf("float")
	case reflect.String:
		leaf("string")
	default:
		leaf("any")
	}
}

// optionalValue sees through configoptional.Optional[T], which keeps T in an
// unexported field and decodes as T.
func optionalValue(t reflect.Type) (reflect.Type, bool) {
	if !strings.HasSuffix(t.PkgPath(), "config/configoptional") || !strings.HasPrefix(t.Name(), "Optional[") {
		return nil, false
	}
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Name == "value" {
			return t.Field(i).Type, true
		}
	}
	return nil, false
}

// hasFields says whether a list's or map's element is a section with keys of its own.
func hasFields(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType || reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return false
	}
	if inner, ok := optionalValue(t); ok {
		return hasFields(inner)
	}
	return t.Kind() == reflect.Struct
}

// mapstructureName is the key confmap decodes a field from, as mapstructure reads
// its tag: `-` skips it, `,squash` inlines it, `,remain` takes the keys no other field
// takes (it names none), no name means the field's own name.
func mapstructureName(field reflect.StructField) (name string, squash, skip bool) {
	if !field.IsExported() {
		return "", false, true
	}
	tag := field.Tag.Get("mapstructure")
	parts := strings.Split(tag, ",")
	if parts[0] == "-" {
		return "", false, true
	}
	for _, opt := range parts[1:] {
		switch opt {
		case "squash":
			squash = true
		case "remain":
			return "", false, true
		}
	}
	if parts[0] != "" {
		return parts[0], squash, false
	}
	return field.Name, squash, false
}

func runConfigKeys() {
	if err := printConfigKeys(); err != nil {
		fmt.Fprintln(os.Stderr, "config-keys:", err)
		os.Exit(1)
	}
}
