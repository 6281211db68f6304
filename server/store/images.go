package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const imageColumns = `id, account_id, task_id, name, description, state, architecture, platform, root_device_name, virtualization_type, ena_support, boot_mode, created`

// CreateImage registers an image whose devices name the account's
// completed snapshots.
func (s *DB) CreateImage(ctx context.Context, img *Image) error {
	return s.tx(ctx, func(tx *rtx) error { return insertImage(ctx, tx, img) })
}

// insertImage registers img in a transaction, checking its snapshots.
func insertImage(ctx context.Context, tx *rtx, img *Image) error {
	for _, d := range img.Devices {
		if d.SnapshotID == "" {
			continue
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM volumes WHERE id = ? AND account_id = ? AND kind = ? AND state = ?`,
			d.SnapshotID, img.AccountID, string(KindSnapshotDisk), string(VolumeAvailable)).Scan(&n); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("%w: %s", ErrNotFound, d.SnapshotID)
		}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO images (`+imageColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		img.ID, img.AccountID, img.TaskID, img.Name, img.Description, string(img.State), img.Architecture, img.Platform,
		img.RootDeviceName, img.VirtualizationType, b2i(img.EnaSupport), img.BootMode, unix(img.Created))
	if isUnique(err) {
		return fmt.Errorf("%w: an image named %q", ErrExists, img.Name)
	}
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	for i, d := range img.Devices {
		if _, err := tx.ExecContext(ctx, `INSERT INTO image_devices VALUES (?, ?, ?, ?, ?, ?, ?)`,
			img.ID, i, d.DeviceName, d.SnapshotID, d.VolumeSize, d.VolumeType, b2i(d.DeleteOnTermination)); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	return nil
}

// Images returns the account's registered images with these ids.
func (s *DB) Images(ctx context.Context, account string, ids []string) ([]*Image, error) {
	q := `SELECT ` + imageColumns + ` FROM images WHERE account_id = ? AND state != '` + string(ImageDeregistered) + `'`
	imgs, err := byIDs(ctx, q, "created, id", account, ids, func(ctx context.Context, q string, args ...any) ([]*Image, error) {
		return queryRows(ctx, s.rdb, q, scanImage, args...)
	}, func(img *Image) string { return img.ID })
	if err != nil {
		return nil, err
	}
	for _, img := range imgs {
		devs, err := queryRows(ctx, s.rdb, `SELECT device_name, snapshot_id, volume_size, volume_type, delete_on_termination
			FROM image_devices WHERE image_id = ? ORDER BY idx`, func(r scanner) (*BlockDevice, error) {
			d := &BlockDevice{}
			return d, r.Scan(&d.DeviceName, &d.SnapshotID, &d.VolumeSize, &d.VolumeType, &d.DeleteOnTermination)
		}, img.ID)
		if err != nil {
			return nil, err
		}
		for _, d := range devs {
			img.Devices = append(img.Devices, *d)
		}
	}
	return imgs, nil
}

func scanImage(r scanner) (*Image, error) {
	img := &Image{}
	var created int64
	if err := r.Scan(&img.ID, &img.AccountID, &img.TaskID, &img.Name, &img.Description, &img.State, &img.Architecture,
		&img.Platform, &img.RootDeviceName, &img.VirtualizationType, &img.EnaSupport, &img.BootMode, &created); err != nil {
		return nil, err
	}
	img.Created = fromUnix(created)
	return img, nil
}

// DeregisterImage deregisters one of the account's images.
func (s *DB) DeregisterImage(ctx context.Context, account, id string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE images SET state = ? WHERE id = ? AND account_id = ? AND state != ?`,
		string(ImageDeregistered), id, account, string(ImageDeregistered))
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: %w", err)
	} else if n == 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return nil
}

// completeImageTask registers the image of an ImportImage task that is
// completing, in the transaction that completes it: its block devices
// are the task's snapshots in order, the first the root device.
func completeImageTask(ctx context.Context, tx *rtx, id string, now time.Time) error {
	var t Task
	err := tx.QueryRowContext(ctx, `SELECT account_id, description, platform, image_id, architecture, boot_mode, created FROM tasks WHERE id = ?`, id).
		Scan(&t.AccountID, &t.Description, &t.Platform, &t.ImageID, &t.Architecture, &t.BootMode, new(int64))
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: task %s", ErrNotFound, id)
	}
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	vols, err := queryRows(ctx, tx, `SELECT `+volumeColumns+` FROM volumes WHERE task_id = ? ORDER BY idx`, scanVolume, id)
	if err != nil {
		return err
	}
	img := &Image{ID: t.ImageID, AccountID: t.AccountID, TaskID: id, Name: id, Description: t.Description, State: ImageAvailable,
		Architecture: t.Architecture, Platform: t.Platform, VirtualizationType: "hvm", EnaSupport: true, BootMode: t.BootMode, Created: now}
	for i, v := range vols {
		name := v.DeviceName
		if name == "" {
			name = DeviceName(i)
		}
		if i == 0 {
			img.RootDeviceName = name
		}
		img.Devices = append(img.Devices, BlockDevice{DeviceName: name, SnapshotID: v.ID, VolumeSize: v.Size, VolumeType: "gp2", DeleteOnTermination: true})
	}
	return insertImage(ctx, tx, img)
}

// DeviceName is the default device of an instance's or image's disk i:
// /dev/sda1 for the root, then /dev/sdb, /dev/sdc, …
func DeviceName(i int) string {
	if i == 0 {
		return "/dev/sda1"
	}
	return "/dev/sd" + string(rune('a'+min(i, 25)))
}
