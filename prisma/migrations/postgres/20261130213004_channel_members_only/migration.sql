-- AlterTable
ALTER TABLE "Channel" ADD COLUMN     "membersOnly" BOOLEAN NOT NULL DEFAULT false;
