package memtest

import "reflect"

// HoldsPointer reports whether a value of ty holds a pointer the
// collector follows: a record type that must cost it nothing to mark.
func HoldsPointer(ty reflect.Type) bool {
	switch ty.Kind() {
	case reflect.Struct:
		for f := range ty.Fields() {
			if HoldsPointer(f.Type) {
				return true
			}
		}
		return false
	case reflect.Array:
		return HoldsPointer(ty.Elem())
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return false
	}
	return true
}
