package server

import (
	"context"
	"errors"
	"strings"

	"github.com/diskport/diskport/server/store"
)

type tagDescriptionXML struct {
	ResourceID   string `xml:"resourceId"`
	ResourceType string `xml:"resourceType"`
	Key          string `xml:"key"`
	Value        string `xml:"value"`
}

type describeTagsResponse struct {
	meta
	Tags      []tagDescriptionXML `xml:"tagSet>item"`
	NextToken string              `xml:"nextToken,omitempty"`
}

// resourceTypes are the resources that take tags, by id prefix (longest
// first), with EC2's resource-type names.
var resourceTypes = []struct{ prefix, kind string }{
	{"import-snap-", "import-snapshot-task"},
	{"import-ami-", "import-image-task"},
	{"snap-", "snapshot"},
	{"ami-", "image"},
	{"vol-", "volume"},
	{"i-", "instance"},
}

// resourceType is EC2's name of the type of resource id, "" when it is
// none that takes tags here.
func resourceType(id string) string {
	for _, r := range resourceTypes {
		if strings.HasPrefix(id, r.prefix) {
			return r.kind
		}
	}
	return ""
}

// checkResources checks that each id is one of the account's resources
// that take tags.
func (s *Server) checkResources(ctx context.Context, c *call, ids []string) error {
	for _, id := range ids {
		var err error
		switch resourceType(id) {
		case "import-snapshot-task":
			_, err = s.st.TasksOf(ctx, c.account, []store.TaskKind{store.KindSnapshot}, []string{id})
		case "import-image-task":
			_, err = s.st.TasksOf(ctx, c.account, []store.TaskKind{store.KindImage}, []string{id})
		case "snapshot":
			_, err = s.st.Snapshots(ctx, c.account, []string{id})
		case "image":
			_, err = s.st.Images(ctx, c.account, []string{id})
		case "volume":
			_, err = s.st.Volumes(ctx, c.account, []string{id})
		case "instance":
			_, err = s.st.Instances(ctx, c.account, []string{id})
		default:
			return errorf("InvalidID", "The ID '%s' is not valid: diskport tags snapshots, images, volumes, instances and import tasks.", clip(id))
		}
		if errors.Is(err, store.ErrNotFound) {
			return errorf("InvalidID", "The ID '%s' does not exist.", clip(id))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// createTags answers CreateTags (osbuild and Terraform tag the snapshots
// they import).
func (s *Server) createTags(ctx context.Context, c *call) (response, error) {
	ids, tags, err := s.tagRequest(ctx, c, true)
	if err != nil {
		return nil, err
	}
	var all []store.Tag
	for _, id := range ids {
		for _, t := range tags {
			t.ResourceID = id
			all = append(all, t)
		}
	}
	if err := s.st.CreateTags(ctx, c.account, all); err != nil {
		return nil, err
	}
	return &returnResponse{Return: true}, nil
}

// deleteTags answers DeleteTags: without Tag.N every tag of the
// resources goes.
func (s *Server) deleteTags(ctx context.Context, c *call) (response, error) {
	ids, tags, err := s.tagRequest(ctx, c, false)
	if err != nil {
		return nil, err
	}
	var del []store.Tag
	if len(tags) == 0 {
		if del, err = s.st.Tags(ctx, c.account, ids); err != nil {
			return nil, err
		}
		for i := range del {
			del[i].Value = ""
		}
	}
	for _, id := range ids {
		for _, t := range tags {
			t.ResourceID = id
			del = append(del, t)
		}
	}
	if err := s.st.DeleteTags(ctx, c.account, del); err != nil {
		return nil, err
	}
	return &returnResponse{Return: true}, nil
}

// tagRequest reads ResourceId.N and Tag.N of CreateTags or DeleteTags,
// checking the resources are the account's.
func (s *Server) tagRequest(ctx context.Context, c *call, need bool) ([]string, []store.Tag, error) {
	ids, err := c.list("ResourceId")
	if err != nil {
		return nil, nil, err
	}
	if len(ids) == 0 {
		return nil, nil, errorf("MissingParameter", "The request must contain the parameter ResourceId.1.")
	}
	c.ids = ids
	tags, err := tagList(c, "Tag", "")
	if err != nil {
		return nil, nil, err
	}
	if need && len(tags) == 0 {
		return nil, nil, errorf("MissingParameter", "The request must contain the parameter Tag.1.Key.")
	}
	if err := s.checkResources(ctx, c, ids); err != nil {
		return nil, nil, err
	}
	return ids, tags, nil
}

func (s *Server) describeTags(ctx context.Context, c *call) (response, error) {
	fs, err := filters(c, "Filter", "resource-id", "resource-type", "key", "value", "tag:")
	if err != nil {
		return nil, err
	}
	tags, err := s.st.Tags(ctx, c.account, nil)
	if err != nil {
		return nil, err
	}
	var list []tagDescriptionXML
	for _, t := range tags {
		x := tagDescriptionXML{ResourceID: t.ResourceID, ResourceType: resourceType(t.ResourceID), Key: t.Key, Value: t.Value}
		ok := match(fs, tags, t.ResourceID, func(name string) []string {
			switch name {
			case "resource-id":
				return []string{x.ResourceID}
			case "resource-type":
				return []string{x.ResourceType}
			case "key":
				return []string{x.Key}
			case "value":
				return []string{x.Value}
			}
			return nil
		})
		if ok {
			list = append(list, x)
		}
	}
	page, next, err := page(c, list, func(x tagDescriptionXML) string { return x.ResourceID + "\x00" + x.Key }, 5)
	if err != nil {
		return nil, err
	}
	return &describeTagsResponse{Tags: append([]tagDescriptionXML{}, page...), NextToken: next}, nil
}
