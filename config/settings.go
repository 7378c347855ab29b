package config

import (
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// settings returns a handler for each setting of the struct dst, keyed as
// its yaml tag names it: a target package declares its settings on its own
// configuration type, and this decodes them with the same strictness,
// expansion and messages as every other section. Untagged fields are not
// settings.
func (d *decoder) settings(dst reflect.Value) map[string]handler {
	known := map[string]handler{}
	t := dst.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if key == "" || key == "-" || !f.IsExported() {
			continue
		}
		known[key] = d.setting(key, dst.Field(i))
	}
	return known
}

// setting decodes a value by its Go type; a key whose name ends in _url is
// a URL.
func (d *decoder) setting(key string, v reflect.Value) handler {
	switch p := v.Addr().Interface().(type) {
	case *string:
		if strings.HasSuffix(key, "_url") {
			return d.url(p)
		}
		return d.str(p)
	case *int:
		return d.integer(p)
	case *float64:
		return d.number(p)
	case *time.Duration:
		return d.duration(p)
	case *bool:
		return d.boolean(p)
	}
	if v.Kind() == reflect.Struct {
		return func(n *yaml.Node, path string) { d.fields(n, path, d.settings(v)) }
	}
	// A target package declared a setting of a type no file can spell.
	return func(n *yaml.Node, path string) {
		d.fail(deref(n).Line, path, "has Go type %s, which the configuration decoder cannot read: this is a bug, please report it", v.Type())
	}
}
