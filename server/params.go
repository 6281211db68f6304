package server

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// get returns a parameter's value ("" when absent).
func (c *call) get(name string) string { return c.params.Get(name) }

// required returns a parameter that must be present and not empty.
func (c *call) required(name string) (string, error) {
	v := strings.TrimSpace(c.params.Get(name))
	if v == "" {
		return "", errorf("MissingParameter", "The request must contain the parameter %s.", name)
	}
	return v, nil
}

// integer parses an integer parameter within [lo, hi]; absent is
// MissingParameter when required, else 0.
func (c *call) integer(name string, lo, hi int64, required bool) (int64, error) {
	v := strings.TrimSpace(c.params.Get(name))
	if v == "" {
		if required {
			return 0, errorf("MissingParameter", "The request must contain the parameter %s.", name)
		}
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, errorf("InvalidParameterValue", "Value (%s) for parameter %s is invalid: want an integer from %d to %d.", clip(v), name, lo, hi)
	}
	return n, nil
}

// boolean parses a true/false parameter; absent is false.
func (c *call) boolean(name string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(c.params.Get(name))) {
	case "":
		return false, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errorf("InvalidParameterValue", "Value (%s) for parameter %s is invalid: want true or false.", clip(c.params.Get(name)), name)
}

// oneOf checks a parameter against its allowed values (any case) and
// returns the allowed spelling.
func oneOf(name, v string, allowed ...string) (string, error) {
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a, nil
		}
	}
	return "", errorf("InvalidParameterValue", "Value (%s) for parameter %s is invalid: want one of %s.", clip(v), name, strings.Join(allowed, ", "))
}

// maxLength refuses a parameter longer than n bytes.
func maxLength(name, v string, n int) error {
	if len(v) > n {
		return errorf("InvalidParameterValue", "Value for parameter %s is longer than %d characters.", name, n)
	}
	return nil
}

// list returns the values of PREFIX.1, PREFIX.2, ... in index order.
func (c *call) list(prefix string) ([]string, error) {
	idx, err := indexes(c.params, prefix)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range idx {
		for _, v := range c.params[prefix+"."+strconv.Itoa(n)] {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
	}
	return out, nil
}

// indexes returns the N of the parameters named PREFIX.N or PREFIX.N.*,
// sorted.
func indexes(params url.Values, prefix string) ([]int, error) {
	seen := map[int]bool{}
	for k := range params {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || n > 1000 {
			return nil, errorf("InvalidParameterValue", "Parameter %s has an invalid index (want %s.1, %s.2, ...).", clip(k), prefix, prefix)
		}
		seen[n] = true
	}
	out := make([]int, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Ints(out)
	return out, nil
}

// clip shortens a client's value for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return cut(s, 64) + "…"
	}
	return s
}

// cut returns the longest prefix of s of at most n bytes that does not
// split a UTF-8 sequence (a name a client sent may be cut anywhere).
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
